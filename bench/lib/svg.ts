/** Hand-written SVG charts of a suite run: figures beside their raw limits, and a latency histogram. */
import type { ResolvedRow } from './report.ts';
import { fmt } from './stats.ts';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** "relay ingest: 1 client, …": the group's first words, then the row's name. */
function chartLabel(r: ResolvedRow): string {
  const group = r.group.split(/[:(]/)[0]!.trim();
  const label = `${group}: ${r.name}`;
  return label.length > 56 ? `${label.slice(0, 55)}…` : label;
}

const FONT = 'font-family="ui-monospace, Menlo, Consolas, monospace" font-size="11"';

/**
 * Paired horizontal bars on a log scale for every rate row with a raw limit: the raw limit (grey),
 * our figure (blue), and the goal (red tick) when there is one.
 */
export function figuresVsLimitsSvg(rows: readonly ResolvedRow[], title: string): string {
  const items = rows.filter(
    (r) => r.raw !== undefined && r.unit.endsWith('/s') && r.value > 0 && r.raw.value > 0,
  );
  const labelW = 400;
  const plotW = 520;
  const rowH = 30;
  const top = 40;
  const height = top + items.length * rowH + 40;
  const width = labelW + plotW + 140;
  const values = items.flatMap((r) => [r.value, r.raw!.value, r.goal?.value ?? r.value]);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...values, 10))));
  const hi = Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (v: number): number => labelW + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<title>${esc(title)}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="20" font-size="14">${esc(title)}</text>`,
  ];
  for (let p = lo; p <= hi; p++) {
    const px = x(10 ** p).toFixed(1);
    out.push(
      `<line x1="${px}" y1="${top - 8}" x2="${px}" y2="${height - 30}" stroke="#ddd"/>`,
      `<text x="${px}" y="${height - 15}" text-anchor="middle" fill="#555">${esc(fmt(10 ** p))}</text>`,
    );
  }
  items.forEach((r, i) => {
    const y = top + i * rowH;
    out.push(
      `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${esc(chartLabel(r))}</text>`,
      `<rect x="${labelW}" y="${y + 2}" width="${(x(r.raw!.value) - labelW).toFixed(1)}" height="10" fill="#bbb"><title>${esc(`raw: ${r.raw!.name} ${fmt(r.raw!.value)} ${r.raw!.unit}`)}</title></rect>`,
      `<rect x="${labelW}" y="${y + 13}" width="${(x(r.value) - labelW).toFixed(1)}" height="10" fill="#3b78c3"><title>${esc(`ours: ${fmt(r.value)} ${r.unit}`)}</title></rect>`,
      `<text x="${(Math.max(x(r.value), x(r.raw!.value)) + 6).toFixed(1)}" y="${y + 21}" fill="#333">${esc(`${fmt(r.value)} ${r.unit} (${((r.ratio ?? 0) * 100).toFixed(0)}%)`)}</text>`,
    );
    if (r.goal !== undefined && r.goal.op === '>=') {
      const gx = x(r.goal.value).toFixed(1);
      out.push(
        `<line x1="${gx}" y1="${y}" x2="${gx}" y2="${y + 26}" stroke="#d22" stroke-width="2"><title>goal ${esc(r.goal.text)}</title></line>`,
      );
    }
  });
  const ly = height - 8;
  out.push(
    `<rect x="10" y="${ly - 9}" width="10" height="8" fill="#bbb"/><text x="24" y="${ly}">raw limit (same run)</text>`,
    `<rect x="170" y="${ly - 9}" width="10" height="8" fill="#3b78c3"/><text x="184" y="${ly}">ours</text>`,
    `<line x1="230" y1="${ly - 9}" x2="230" y2="${ly}" stroke="#d22" stroke-width="2"/><text x="236" y="${ly}">goal</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

/** Histogram of latency samples (ms), with p50, p99 and the goal marked. */
export function latencyHistogramSvg(
  sorted: Float64Array,
  marks: { p50: number; p99: number; goal: number },
  title: string,
): { svg: string; bins: { fromMs: number; count: number }[] } {
  const width = 760;
  const height = 320;
  const left = 60;
  const right = 20;
  const top = 40;
  const bottom = 50;
  const p999 = sorted.length === 0 ? 1 : sorted[Math.floor(sorted.length * 0.999)]!;
  const maxMs = Math.max(marks.goal * 1.1, p999 * 1.05, 1);
  const binCount = 100;
  const binMs = maxMs / binCount;
  const counts = new Array<number>(binCount).fill(0);
  for (const v of sorted) counts[Math.min(binCount - 1, Math.floor(v / binMs))]!++;
  const maxCount = Math.max(1, ...counts);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (ms: number): number => left + (ms / maxMs) * plotW;
  const y = (c: number): number => top + plotH - (c / maxCount) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<title>${esc(title)}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="20" font-size="14">${esc(title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
  ];
  counts.forEach((c, i) => {
    if (c === 0) return;
    out.push(
      `<rect x="${x(i * binMs).toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(1, plotW / binCount - 1).toFixed(1)}" height="${(top + plotH - y(c)).toFixed(1)}" fill="#3b78c3"/>`,
    );
  });
  for (let t = 0; t <= 5; t++) {
    const ms = (maxMs * t) / 5;
    out.push(
      `<text x="${x(ms).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${ms.toFixed(ms < 10 ? 1 : 0)} ms</text>`,
    );
  }
  out.push(
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${fmt(maxCount)}</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`,
  );
  const mark = (ms: number, color: string, label: string, dy: number): void => {
    const px = x(Math.min(ms, maxMs));
    // Labels near the right edge go to the left of their line.
    const leftSide = px > width - right - 150;
    out.push(
      `<line x1="${px.toFixed(1)}" y1="${top}" x2="${px.toFixed(1)}" y2="${top + plotH}" stroke="${color}" stroke-dasharray="4 3"/>`,
      `<text x="${(leftSide ? px - 4 : px + 4).toFixed(1)}" y="${top + 12 + dy}" fill="${color}" text-anchor="${leftSide ? 'end' : 'start'}">${esc(label)}</text>`,
    );
  };
  mark(marks.p50, '#2a2', `p50 ${marks.p50.toFixed(1)} ms`, 0);
  mark(marks.p99, '#e80', `p99 ${marks.p99.toFixed(1)} ms`, 14);
  mark(marks.goal, '#d22', `goal p99 < ${marks.goal} ms`, 28);
  out.push(
    `<text x="${left + plotW / 2}" y="${height - 12}" text-anchor="middle">post → delivered to a subscriber (ms), ${fmt(sorted.length)} deliveries</text>`,
    '</svg>',
  );
  return {
    svg: `${out.join('\n')}\n`,
    bins: counts.map((count, i) => ({ fromMs: i * binMs, count })),
  };
}

export interface SyncSeries {
  readonly label: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly points: readonly { groups: number; rate: number }[];
}

/**
 * Client sync rate against the number of groups a profile holds (both axes log scale): our
 * series, and what trial decryption (one AEAD open per group per envelope, as in Cwtch) would
 * allow at best; goals as horizontal lines.
 */
export function syncVsGroupsSvg(
  series: readonly SyncSeries[],
  goals: readonly { value: number; label: string }[],
  title: string,
): string {
  const width = 760;
  const height = 380;
  const left = 80;
  const right = 200;
  const top = 40;
  const bottom = 50;
  const all = series.flatMap((s) => s.points);
  const groups = all.map((p) => p.groups);
  const rates = [...all.map((p) => p.rate), ...goals.map((g) => g.value)].filter((v) => v > 0);
  const gx0 = Math.log10(Math.min(...groups, 1));
  const gx1 = Math.max(Math.log10(Math.max(...groups, 10)), gx0 + 1);
  const ry0 = Math.floor(Math.log10(Math.min(...rates)));
  const ry1 = Math.ceil(Math.log10(Math.max(...rates)));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (g: number): number => left + ((Math.log10(g) - gx0) / (gx1 - gx0)) * plotW;
  const y = (r: number): number =>
    top + plotH - ((Math.log10(Math.max(r, 10 ** ry0)) - ry0) / (ry1 - ry0)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<title>${esc(title)}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="20" font-size="14">${esc(title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
  ];
  for (let p = ry0; p <= ry1; p++) {
    const py = y(10 ** p).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${py}" x2="${left + plotW}" y2="${py}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(fmt(10 ** p))}/s</text>`,
    );
  }
  for (const g of [...new Set(groups)].sort((a, b) => a - b)) {
    const px = x(g).toFixed(1);
    out.push(
      `<line x1="${px}" y1="${top}" x2="${px}" y2="${top + plotH}" stroke="#eee"/>`,
      `<text x="${px}" y="${top + plotH + 16}" text-anchor="middle">${g}</text>`,
    );
  }
  for (const goal of goals) {
    const py = y(goal.value).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${py}" x2="${left + plotW}" y2="${py}" stroke="#d22" stroke-dasharray="2 3"/>`,
      `<text x="${left + plotW + 6}" y="${py}" fill="#d22" dominant-baseline="middle">${esc(goal.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.groups - b.groups);
    const path = pts
      .map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.groups).toFixed(1)},${y(p.rate).toFixed(1)}`)
      .join(' ');
    out.push(
      `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    for (const p of pts)
      out.push(
        `<circle cx="${x(p.groups).toFixed(1)}" cy="${y(p.rate).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(`${s.label}, ${p.groups} groups: ${fmt(p.rate)}/s`)}</title></circle>`,
      );
    const ly = top + 10 + i * 16;
    out.push(
      `<line x1="${left + plotW + 6}" y1="${ly + 120}" x2="${left + plotW + 26}" y2="${ly + 120}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${left + plotW + 30}" y="${ly + 120}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  out.push(
    `<text x="${left + plotW / 2}" y="${height - 12}" text-anchor="middle">groups the profile holds on the relay</text>`,
    `<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">envelopes per second per core</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
