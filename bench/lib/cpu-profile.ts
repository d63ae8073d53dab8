/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function, and the share of
 * samples in which the event loop was idle. Time a native call blocks the main thread (an SQLite
 * fsync, a libsodium signature) is charged to the JS function that made the call.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './procs.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileLine {
  readonly fn: string;
  readonly where: string;
  readonly selfMs: number;
  /** Share of the non-idle time. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  readonly top: ProfileLine[];
  /** Self time grouped by module (file or package). */
  readonly byModule: { module: string; selfMs: number; share: number }[];
}

function where(url: string, line: number): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const rel = path.startsWith(ROOT) ? relative(ROOT, path) : path;
  return `${rel}:${line + 1}`;
}

function moduleOf(url: string): string {
  if (url === '') return '(native / V8)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const rel = path.startsWith(ROOT) ? relative(ROOT, path) : path;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
  if (nm) return `node_modules/${nm[1]}`;
  if (rel.startsWith('node:')) return 'node internals';
  return rel;
}

/**
 * Summarise a profile, or only the samples taken within `window`: absolute times in µs of the
 * profile's clock (CLOCK_MONOTONIC on Linux, the clock of process.hrtime), e.g. a relay's first
 * second of traffic against the rest.
 */
export function summariseProfile(
  file: string,
  topN = 20,
  window?: { readonly fromUs: number; readonly toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; charge it to the sample (V8's convention).
    at += deltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at >= window.toUs)) continue;
    const ms = (deltas[i] ?? 0) / 1000;
    selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + ms);
  }
  const totalMs =
    (window === undefined
      ? profile.endTime - profile.startTime
      : Math.min(profile.endTime, window.toUs) - Math.max(profile.startTime, window.fromUs)) / 1000;
  const perFn = new Map<string, { fn: string; where: string; selfMs: number }>();
  const perModule = new Map<string, number>();
  let idleMs = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleMs += ms;
      continue;
    }
    const w = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${name} ${w}`;
    const entry = perFn.get(key) ?? { fn: name, where: w, selfMs: 0 };
    entry.selfMs += ms;
    perFn.set(key, entry);
    const mod = name.startsWith('(') ? name : moduleOf(node.callFrame.url);
    perModule.set(mod, (perModule.get(mod) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  const top = [...perFn.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((e) => ({ ...e, share: e.selfMs / busyMs }));
  const byModule = [...perModule.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([module, ms]) => ({ module, selfMs: ms, share: ms / busyMs }));
  return { totalMs, idleMs, busyMs, top, byModule };
}

export function formatProfile(s: ProfileSummary, title: string): string {
  const lines = [
    title,
    `profile ${s.totalMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms, busy ${s.busyMs.toFixed(0)} ms (shares below are of busy time)`,
    '',
    'top self time by function:',
    ...s.top.map(
      (l) =>
        `  ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.selfMs.toFixed(0).padStart(6)} ms  ${l.fn}  ${l.where}`,
    ),
    '',
    'self time by module:',
    ...s.byModule.map(
      (m) =>
        `  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.selfMs.toFixed(0).padStart(6)} ms  ${m.module}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
