/**
 * The SQLite driver (better-sqlite3) this Node can run, for the profile store and the relay.
 *
 * Two builds of one library, chosen once at load by the Node-API version the runtime offers
 * (docs/ARCHITECTURE.md "Dependencies"):
 * - Node-API 10 and later (Node 22.14+, Node 24): better-sqlite3 13, built on node-addon-api.
 *   better-sqlite3 12 subclasses Node's raw `node::ObjectWrap`, whose destructor since Node 24.19
 *   removes an environment cleanup hook and asserts an environment is current; when V8 finalises
 *   a statement from a task with no context entered (an idle GC, the teardown at exit), the
 *   process aborts (`node::RemoveEnvironmentCleanupHook … Assertion failed: (env) != nullptr`).
 * - Node-API 9 (Node 20): better-sqlite3 12, installed under the alias `better-sqlite3-node20`.
 *   Version 13 asks for Node-API 10 and crashes in `new Database()` there; 12 has no such
 *   abort on Node 20, whose ObjectWrap registers no hook.
 * Both have the same API; the types are @types/better-sqlite3's. Every import of the driver in
 * src, test and bench goes through this file, so one process never loads both.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/** The first Node-API version whose runtimes load better-sqlite3 13. */
const NODE_API_FOR_13 = 10;

/** The package name of the driver for this runtime (diagnostics and tests). */
export const SQLITE_DRIVER_PACKAGE =
  Number(process.versions.napi) >= NODE_API_FOR_13 ? 'better-sqlite3' : 'better-sqlite3-node20';

const require = createRequire(import.meta.url);
const Database = require(SQLITE_DRIVER_PACKAGE) as typeof BetterSqlite3;

// The library's types under the names its own default export carries (Database.Database, …),
// so the callers read as they would with a plain `import Database from 'better-sqlite3'`.
declare namespace Database {
  type Database = BetterSqlite3.Database;
  // biome-ignore lint/suspicious/noExplicitAny: the library's own bound for a transaction's function
  type Transaction<F extends (...params: any[]) => unknown> = BetterSqlite3.Transaction<F>;
  type SqliteError = BetterSqlite3.SqliteError;
  type Statement = BetterSqlite3.Statement<unknown[]>;
}

export default Database;
