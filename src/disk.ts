/**
 * Directories and disk errors, in one place for the relay, tor and the profile store.
 *
 * `mkdirSync(path, { recursive: true })` loops forever when a parent refuses children without
 * saying so plainly (`/proc/nope`: ENOENT for ever, issue 13 finding 8), so `makeDirectory` walks
 * the path itself, one non-recursive mkdir per missing component, and fails at the first refusal.
 * `diskError` turns what the operating system said into a UsageError (exit 2, docs/ERRORS.md):
 * a path the user gave that cannot be used is the user's to fix, not a bug.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type CwtchError, UsageError } from './errors.ts';

const DISK_REASONS: Readonly<Record<string, { reason: string; what: string }>> = {
  EEXIST: { reason: 'disk-exists', what: 'something is already there' },
  ENOTDIR: { reason: 'disk-not-a-directory', what: 'a part of the path is not a directory' },
  EISDIR: { reason: 'disk-is-a-directory', what: 'it is a directory' },
  EACCES: { reason: 'disk-permission', what: 'permission denied' },
  EPERM: { reason: 'disk-permission', what: 'operation not permitted' },
  EROFS: { reason: 'disk-read-only', what: 'the file system is read-only' },
  ENOSPC: { reason: 'disk-full', what: 'no space left on the device' },
  EDQUOT: { reason: 'disk-full', what: 'the disk quota is exhausted' },
  ENOENT: { reason: 'disk-missing', what: 'no such file or directory, and none can be made there' },
  ENAMETOOLONG: { reason: 'disk-bad-path', what: 'the path is too long' },
  ELOOP: { reason: 'disk-bad-path', what: 'too many symbolic links' },
};

function errnoCode(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null || !('code' in cause)) return undefined;
  const code = (cause as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The UsageError for a failed file-system call, or undefined when `cause` is no disk error. */
export function diskError(cause: unknown, action?: string): CwtchError | undefined {
  const code = errnoCode(cause);
  const known = code === undefined ? undefined : DISK_REASONS[code];
  if (known === undefined) return undefined;
  const path =
    typeof cause === 'object' && cause !== null && 'path' in cause ? String(cause.path) : undefined;
  const doing = action ?? (path === undefined ? 'use the disk' : `use ${path}`);
  return new UsageError(known.reason, `cannot ${doing}: ${known.what} (${code})`, { cause });
}

/** `diskError`, or the original error when it is not one. */
export function asDiskError(cause: unknown, action?: string): unknown {
  return diskError(cause, action) ?? cause;
}

/**
 * Make `path` and its missing parents as directories with `mode`; an existing directory is fine.
 * Throws a UsageError (reason disk-*) at the first component that cannot be made, never loops.
 */
export function makeDirectory(path: string, mode = 0o700): void {
  const target = resolve(path);
  const missing: string[] = [];
  for (let at = target; ; at = dirname(at)) {
    const kind = statKind(at, path);
    if (kind === 'directory') break;
    if (kind === 'other') {
      throw new UsageError(
        'disk-not-a-directory',
        `cannot make the directory ${path}: ${at} is not a directory`,
      );
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode });
    } catch (cause) {
      // A concurrent process may have made it meanwhile: fine if it is a directory now.
      if (errnoCode(cause) === 'EEXIST' && statKind(dir, path) === 'directory') continue;
      throw diskError(cause, `make the directory ${path}`) ?? cause;
    }
  }
}

function statKind(at: string, asked: string): 'directory' | 'other' | 'missing' {
  try {
    return statSync(at).isDirectory() ? 'directory' : 'other';
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT') return 'missing';
    throw diskError(cause, `make the directory ${asked}`) ?? cause;
  }
}
