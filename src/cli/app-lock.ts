/**
 * While `cwtch-groups app` runs, it alone holds the profile (docs/CLI.md `app`): a second writer
 * with its own in-memory message graph would post a sequence number the app has already used,
 * which every reader would see as the owner equivocating. The app writes its pid to `app.lock`
 * in the profile directory; other commands refuse while that process lives. A lock left by a
 * process that died is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';

export const APP_LOCK_FILE = 'app.lock';

function runningPid(home: string): number | null {
  let text: string;
  try {
    text = readFileSync(join(home, APP_LOCK_FILE), 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

/** Refuse when a running app holds the profile at `home`. @throws UsageError('profile-in-use') */
export function assertNoApp(home: string): void {
  const pid = runningPid(home);
  if (pid !== null && pid !== process.pid) {
    throw new UsageError(
      'profile-in-use',
      `cwtch-groups app (pid ${pid}) holds the profile at ${home}; use the app, or stop it first`,
    );
  }
}

/** Take the profile for the app; returns the release. @throws UsageError('profile-in-use') */
export function takeAppLock(home: string): () => void {
  assertNoApp(home);
  const path = join(home, APP_LOCK_FILE);
  rmSync(path, { force: true });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch {
    throw new UsageError('profile-in-use', `another cwtch-groups app just took the profile at ${home}`);
  }
  writeSync(fd, `${process.pid}\n`);
  closeSync(fd);
  return () => rmSync(path, { force: true });
}
