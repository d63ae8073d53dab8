/**
 * Result rows of the benchmark suite, the one table it prints, and the hook through which the
 * standalone scripts (bench/log-append.ts, tokens.ts, dag.ts) hand their figures to bench/run.ts.
 */
import { appendFileSync } from 'node:fs';
import { fmt, median } from './stats.ts';

/** A raw limit: the same primitive work, measured in the same run on the same machine. */
export interface RawLimit {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** A goal of the project (bench/README.md, the goals table). */
export interface Goal {
  readonly op: '>=' | '<';
  readonly value: number;
  /** As printed, e.g. "≥ 20,000/s" or "< 200 MB at 1M". */
  readonly text: string;
  /** When the goal is stated for a larger setting than the one measured (e.g. 1M entries). */
  readonly notApplicable?: string;
}

export interface Row {
  /** Stable key, e.g. "ingest.cli.100". */
  readonly id: string;
  /** Section of the table. */
  readonly group: string;
  readonly name: string;
  /** Shorter name shown where another row cites this one as its raw limit. */
  readonly short?: string;
  readonly unit: string;
  /** One figure per run; the table reports the median. */
  readonly runs: number[];
  /** The raw limit; either given, or looked up by rawId among the rows of this run. */
  raw?: RawLimit;
  readonly rawId?: string;
  readonly goal?: Goal;
  note?: string;
}

export interface ResolvedRow extends Row {
  readonly value: number;
  readonly ratio: number | undefined;
  readonly met: boolean | undefined;
}

export function resolveRows(rows: readonly Row[]): ResolvedRow[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  return rows.map((r) => {
    const value = r.runs.length === 0 ? Number.NaN : median(r.runs);
    let raw = r.raw;
    if (raw === undefined && r.rawId !== undefined) {
      const source = byId.get(r.rawId);
      if (source !== undefined && source.runs.length > 0)
        raw = { name: source.short ?? source.name, value: median(source.runs), unit: source.unit };
    }
    const ratio = raw === undefined || raw.value === 0 ? undefined : value / raw.value;
    let met: boolean | undefined;
    if (r.goal !== undefined && r.goal.notApplicable === undefined && Number.isFinite(value))
      met = r.goal.op === '>=' ? value >= r.goal.value : value < r.goal.value;
    return { ...r, ...(raw === undefined ? {} : { raw }), value, ratio, met };
  });
}

/** "yes", "NO (−38%)", "— (goal at 1M)" … */
export function metText(r: ResolvedRow): string {
  if (r.goal === undefined) return '';
  if (r.goal.notApplicable !== undefined) return `n/a (${r.goal.notApplicable})`;
  if (r.met === undefined) return '?';
  const off = (r.value / r.goal.value - 1) * 100;
  const sign = off >= 0 ? '+' : '−';
  return `${r.met ? 'yes' : 'NO'} (${sign}${Math.abs(off).toFixed(0)}%)`;
}

function ratioText(r: ResolvedRow): string {
  if (r.ratio === undefined || !Number.isFinite(r.ratio)) return '';
  if (r.ratio >= 10) return `${r.ratio.toFixed(0)}×`;
  return r.ratio >= 0.1 ? `${r.ratio.toFixed(2)}×` : `${r.ratio.toPrecision(2)}×`;
}

/** The one table: benchmark, our figure, unit, raw limit, ratio, goal, met? */
export function formatTable(rows: readonly ResolvedRow[]): string {
  const header = ['benchmark', 'ours', 'unit', 'raw limit (same run)', 'ratio', 'goal', 'met?'];
  const lines: string[][] = [];
  let group = '';
  const groupLines = new Set<number>();
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      groupLines.add(lines.length);
      lines.push([`[${group}]`, '', '', '', '', '', '']);
    }
    const raw = r.raw === undefined ? '' : `${fmt(r.raw.value)} ${r.raw.unit} ${r.raw.name}`;
    lines.push([`  ${r.name}`, fmt(r.value), r.unit, raw, ratioText(r), r.goal?.text ?? '', metText(r)]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const right = new Set([1, 4]);
  const render = (cells: string[]): string =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  const out = [render(header), widths.map((w) => '-'.repeat(w)).join('-|-')];
  lines.forEach((l, i) => {
    out.push(groupLines.has(i) ? l[0]! : render(l));
  });
  return `${out.join('\n')}\n`;
}

/** Markdown version of the table (for bench/README.md). */
export function formatMarkdown(rows: readonly ResolvedRow[]): string {
  const out = [
    '| benchmark | ours | unit | raw limit (same run) | ratio | goal | met? |',
    '|---|--:|---|---|--:|---|---|',
  ];
  let group = '';
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      out.push(`| **${group}** | | | | | | |`);
    }
    const raw = r.raw === undefined ? '' : `${fmt(r.raw.value)} ${r.raw.unit} ${r.raw.name}`;
    out.push(
      `| ${r.name} | ${fmt(r.value)} | ${r.unit} | ${raw} | ${ratioText(r)} | ${r.goal?.text ?? ''} | ${metText(r)} |`,
    );
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The hook for standalone scripts.

/** A figure a standalone script reports; bench/run.ts collects them into rows. */
export interface ScriptResult {
  readonly id: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly raw?: RawLimit;
}

/** Environment variable naming the JSON-lines file a script appends its results to. */
export const RESULTS_FILE_ENV = 'BENCH_RESULTS_FILE';

/** Record a figure for bench/run.ts (a no-op when the script runs on its own). */
export function emitResult(result: ScriptResult): void {
  const file = process.env[RESULTS_FILE_ENV];
  if (file === undefined || file === '') return;
  appendFileSync(file, `${JSON.stringify(result)}\n`);
}
