/**
 * Public surface of the transcript module: the message DAG of one group, its consistency checker
 * and the findings it reports (docs/transcript.md). Pure data structures: no I/O, no signatures.
 */
export { type CheckerOptions, ConsistencyChecker } from './checker.ts';
export {
  type Acknowledgement,
  assertInsertable,
  type InsertResult,
  MessageDag,
  type MissingParent,
  type ParentCandidate,
  rankParents,
} from './dag.ts';
export {
  type AuthorGapFinding,
  type BackdatedFinding,
  type BrokenAuthorChainFinding,
  type DuplicateParentFinding,
  type EquivocationEvidence,
  type EquivocationFinding,
  FINDING_TYPES,
  type Finding,
  type FindingType,
  isTransient,
  type MissingParentFinding,
  type TooManyParentsFinding,
} from './findings.ts';
export { AUTHOR_BYTES, type DagMessage, ID_BYTES, MAX_PARENTS, type Seq, toSeq } from './types.ts';
