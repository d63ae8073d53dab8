/**
 * While `cwtch-groups app` or `cwtch-groups chat` runs, it alone holds the profile (docs/CLI.md
 * `app`): a second writer with its own in-memory message graph would post a sequence number the
 * running one has already used, which every reader would see as the owner equivocating. The
 * holder writes its pid and command to `app.lock` in the profile directory; other commands
 * refuse while that process lives. A lock left by a process that died is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';

export const APP_LOCK_FILE = 'app.lock';

/** The commands that hold a profile while they run. */
export type HoldingCommand = 'app' | 'chat';

function runningHolder(home: string): { pid: number; command: HoldingCommand } | null {
  let text: string;
  try {
    text = readFileSync(join(home, APP_LOCK_FILE), 'utf8');
  } catch {
    return null;
  }
  const m = /^(\d{1,10})(?: (app|chat))?\n?$/.exec(text);
  const pid = m === null ? Number.NaN : Number(m[1]);
  if (m === null || !Number.isSafeInteger(pid) || pid <= 0) return null;
  const command = m[2] === 'chat' ? 'chat' : 'app';
  try {
    process.kill(pid, 0);
    return { pid, command };
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? { pid, command } : null;
  }
}

/** Refuse when a running app or chat holds the profile at `home`. @throws UsageError('profile-in-use') */
export function assertNoApp(home: string): void {
  const holder = runningHolder(home);
  if (holder !== null && holder.pid !== process.pid) {
    throw new UsageError(
      'profile-in-use',
      `cwtch-groups ${holder.command} (pid ${holder.pid}) holds the profile at ${home}; use it, or stop it first`,
    );
  }
}

/** Take the profile for `command`; returns the release. @throws UsageError('profile-in-use') */
export function takeAppLock(home: string, command: HoldingCommand = 'app'): () => void {
  assertNoApp(home);
  const path = join(home, APP_LOCK_FILE);
  rmSync(path, { force: true });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch {
    throw new UsageError(
      'profile-in-use',
      `another cwtch-groups app or chat just took the profile at ${home}`,
    );
  }
  writeSync(fd, `${process.pid} ${command}\n`);
  closeSync(fd);
  return () => rmSync(path, { force: true });
}
