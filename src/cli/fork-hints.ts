/** Hints the CLI prints under a fork error (src/client/forks/forks.ts raises them). */
export const FORK_HINTS: Readonly<Record<string, string>> = {
  'unknown-member': 'give a member address as `cwtch-groups group members GROUP` prints it',
  'unknown-fork': 'list the forks of a group with: cwtch-groups group forks GROUP',
  'ambiguous-fork': 'give more hex digits of the announcement id',
  'fork-not-pending': 'see its status with: cwtch-groups group forks GROUP',
  'fork-too-small': 'a fork needs at least one other member',
  'fork-too-large': 'a fork holds at most 48 members; fork into several groups',
};
