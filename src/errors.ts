/**
 * The one error hierarchy of cwtch-groups. Every error that crosses a module boundary is a
 * CwtchError with a stable `code` (the class of failure) and a stable `reason` (the precise
 * cause, kebab-case). Codes map to wire error frames and CLI exit codes; docs/ERRORS.md
 * lists them all.
 */

export type ErrorCode = 'codec' | 'verify' | 'inconsistency' | 'usage' | 'pushback' | 'internal';

/** CLI exit status per error code (docs/ERRORS.md). 3 is reserved for "audit found something". */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  usage: 2,
  codec: 4,
  verify: 5,
  inconsistency: 6,
  pushback: 7,
  internal: 70,
};

export class CwtchError extends Error {
  readonly code: ErrorCode;
  readonly reason: string;
  /** Evidence that lets a user hand the failure to someone else (checkpoints, proofs, messages). */
  readonly evidence: unknown;

  constructor(
    code: ErrorCode,
    reason: string,
    message: string,
    options?: { cause?: unknown; evidence?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = reason;
    this.evidence = options?.evidence;
  }
}

/** Malformed bytes: the input is not a valid encoding of what was expected. */
export class CodecError extends CwtchError {
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('codec', reason, message, options);
    this.name = 'CodecError';
  }
}

/** Well-formed input whose cryptographic check failed (signature, MAC, proof, checksum). */
export class VerifyError extends CwtchError {
  constructor(reason: string, message: string, options?: { cause?: unknown; evidence?: unknown }) {
    super('verify', reason, message, options);
    this.name = 'VerifyError';
  }
}

/** Two signed statements that cannot both be true: carries both, plus the proof. */
export class InconsistencyError extends CwtchError {
  constructor(reason: string, message: string, evidence: unknown) {
    super('inconsistency', reason, message, { evidence });
    this.name = 'InconsistencyError';
  }
}

/** The caller used an API or command wrongly (bad argument, unknown group, wrong passphrase). */
export class UsageError extends CwtchError {
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('usage', reason, message, options);
    this.name = 'UsageError';
  }
}

/**
 * The peer is overloaded or rate-limiting us: retry later.
 *
 * Flow control, not a failure: it carries no stack trace. A relay refuses posts this way exactly
 * when it is busiest, and capturing the stack cost ~6 µs per refusal (bench/README.md "Relay
 * ingest"), more than the rest of the refusal.
 */
export class PushbackError extends CwtchError {
  readonly retryAfterMs: number;
  constructor(reason: string, message: string, retryAfterMs = 1000) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super('pushback', reason, message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'PushbackError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** A bug or an environment failure (disk full, database corrupt). */
export class InternalError extends CwtchError {
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('internal', reason, message, options);
    this.name = 'InternalError';
  }
}

export function isCwtchError(e: unknown): e is CwtchError {
  return e instanceof CwtchError;
}

/** Assert a public argument is a Uint8Array of an exact (or bounded) length, naming the argument. */
export function assertBytes(name: string, value: unknown, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new UsageError('bad-argument', `${name} must be a Uint8Array`);
  }
  if (length !== undefined && value.length !== length) {
    throw new UsageError('bad-argument', `${name} must be ${length} bytes, got ${value.length}`);
  }
}
