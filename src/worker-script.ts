/**
 * What a worker thread runs to load one of our modules (the relay's receipt signers, the client's
 * signature checks): the compiled file when this code runs compiled (dist/, as `bin/` and
 * `npm start` run it), or, from the sources (tests, bench), a bootstrap that registers tsx in the
 * worker and then imports the TypeScript file. Holds no secret: what a worker needs travels in its
 * messages or shared memory, never in the script.
 */

/** True when this module is the compiled JavaScript, false when it runs from the TypeScript source. */
const COMPILED = import.meta.url.endsWith('.js');

export interface WorkerScript {
  readonly script: string | URL;
  /** Pass as the Worker's `eval` option: the script is code, not a file. */
  readonly eval: boolean;
}

/** The script of the worker module `name` (without extension) beside the module at `base` (its import.meta.url). */
export function workerScript(base: string, name: string): WorkerScript {
  const url = new URL(`./${name}.${COMPILED ? 'js' : 'ts'}`, base);
  if (COMPILED) return { script: url, eval: false };
  // Resolved only here: compiled code must not need tsx (a devDependency) installed.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); });`;
  return { script: bootstrap, eval: true };
}
