/**
 * Tests with the real tor. On a developer's machine without tor they are skipped with the reason
 * printed; in CI (CI=true) a missing tor fails them instead: CI installs it (.ci/setup-tor.sh).
 */
import { spawnSync } from 'node:child_process';

/** The missing programs among `programs`, found on PATH as a shell would. */
export function missingPrograms(programs: readonly string[]): string[] {
  return programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }).status !== 0);
}

/**
 * `skip` option for node:test: false when every program is present; a printed reason when one
 * is missing on a developer's machine. @throws in CI when one is missing.
 */
export function skipUnlessPrograms(programs: readonly string[]): string | false {
  const missing = missingPrograms(programs);
  if (missing.length === 0) return false;
  const reason = `${missing.join(', ')} not installed (apt-get install tor; see .ci/setup-tor.sh)`;
  if (process.env.CI === 'true') throw new Error(`CI must run the tor tests, but ${reason}`);
  process.stderr.write(`# skipping tor tests: ${reason}\n`);
  return reason;
}
