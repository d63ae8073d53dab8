/**
 * The standalone benchmark scripts as entries of the suite: each runs in its own process (fresh
 * JIT and heap, as when run by hand) and hands its figures over through emitResult
 * (bench/lib/report.ts). bench/relay-storage.ts prints text only; its key lines are parsed.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runNodeScript, tempDir } from '../lib/procs.ts';
import { RESULTS_FILE_ENV, type Row, type ScriptResult } from '../lib/report.ts';
import { median } from '../lib/stats.ts';

export interface ScriptSpec {
  readonly group: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly timeoutMs: number;
  /** Figures from stdout, for scripts that do not call emitResult. */
  readonly parse?: (stdout: string) => ScriptResult[];
}

const num = (text: string): number => Number(text.replace(/,/g, ''));

/** The key lines of bench/relay-storage.ts. */
export function parseRelayStorage(stdout: string): ScriptResult[] {
  const out: ScriptResult[] = [];
  const raw = /raw SQLite insert, one transaction\s+([\d,]+)/.exec(stdout);
  const rawLimit =
    raw === null ? undefined : { name: 'SQLite entries+bodies, 1 txn', value: num(raw[1]!), unit: '/s' };
  const full = /durable posts with receipts\s+([\d,]+)/.exec(stdout);
  if (full !== null)
    out.push({
      id: 'storage.sequencer',
      name: 'sequencer in-process, durable posts with receipts',
      value: num(full[1]!),
      unit: '/s',
      ...(rawLimit === undefined ? {} : { raw: rawLimit }),
    });
  const stub = /receipt signing stubbed\s+([\d,]+)/.exec(stdout);
  if (stub !== null)
    out.push({
      id: 'storage.sequencer-nosign',
      name: 'sequencer in-process, receipt signing stubbed',
      value: num(stub[1]!),
      unit: '/s',
      ...(rawLimit === undefined ? {} : { raw: rawLimit }),
    });
  const restart = /restart \(open storage \+ sequencer\) with ([\d,]+) entries: ([\d.]+) ms/.exec(stdout);
  if (restart !== null)
    out.push({
      id: 'storage.reopen',
      name: `Sequencer.open with ${restart[1]} entries (in-process)`,
      value: Number(restart[2]),
      unit: 'ms',
    });
  return out;
}

/**
 * Run a script `runs` times; one row per figure id (median over runs, the raw limit likewise).
 * Failures become notes, not exceptions: one broken script must not sink the suite.
 */
export async function runScript(
  spec: ScriptSpec,
  runs: number,
  notes: string[],
  log: (line: string) => void,
): Promise<Row[]> {
  const perId = new Map<string, { result: ScriptResult; values: number[]; raws: number[] }>();
  const dir = tempDir('script');
  for (let run = 0; run < runs; run++) {
    log(`${spec.file} ${spec.args.join(' ')} (run ${run + 1}/${runs})`);
    const resultsFile = join(dir, `results-${run}.jsonl`);
    const r = await runNodeScript(
      join(ROOT, spec.file),
      spec.args,
      { ...spec.env, [RESULTS_FILE_ENV]: resultsFile },
      spec.timeoutMs,
    );
    if (r.code !== 0) {
      notes.push(
        `${spec.file} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      );
      break;
    }
    let results: ScriptResult[] = [];
    try {
      results = readFileSync(resultsFile, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as ScriptResult);
    } catch {
      // No emitResult calls: fall back to parsing.
    }
    if (spec.parse !== undefined) results.push(...spec.parse(r.stdout));
    if (results.length === 0) {
      notes.push(`${spec.file}: no figures found in its output`);
      break;
    }
    for (const result of results) {
      const entry = perId.get(result.id) ?? { result, values: [], raws: [] };
      entry.values.push(result.value);
      if (result.raw !== undefined) entry.raws.push(result.raw.value);
      perId.set(result.id, entry);
    }
    rmSync(resultsFile, { force: true });
  }
  return [...perId.values()].map(({ result, values, raws }) => ({
    id: result.id,
    group: spec.group,
    name: result.name,
    unit: result.unit,
    runs: values,
    ...(result.raw === undefined || raws.length === 0 ? {} : { raw: { ...result.raw, value: median(raws) } }),
  }));
}
