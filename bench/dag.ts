/**
 * Benchmark of the transcript DAG: inserts/s for 10k and 100k messages, in causal order and in a
 * shuffled (worst realistic: everything buffered) order, plus the on-demand queries.
 *
 *   node --import tsx bench/dag.ts [sizes=10000,100000]
 *
 * Beside our figure it prints the raw limit measured in the same run: hex-encoding an id and
 * setting it in a Map, which every insert must do at least once. Also an entry of the suite
 * (bench/run.ts), which collects its figures through emitResult.
 */
import { randomBytes } from 'node:crypto';
import { ConsistencyChecker, type DagMessage, MessageDag } from '../src/transcript/index.ts';
import { emitResult } from './lib/report.ts';

const AUTHORS = 20;

function generate(n: number): { messages: DagMessage[]; authors: Uint8Array[] } {
  const authors = Array.from({ length: AUTHORS }, () => new Uint8Array(randomBytes(32)));
  const prev: (DagMessage | undefined)[] = authors.map(() => undefined);
  const recent: DagMessage[] = []; // what a client would have seen lately: the last few messages
  const messages: DagMessage[] = [];
  let ts = 1_700_000_000_000;
  for (let i = 0; i < n; i++) {
    const a = Math.floor(Math.random() * AUTHORS);
    const own = prev[a];
    const parents: Uint8Array[] = own === undefined ? [] : [own.id];
    for (const r of recent) {
      if (parents.length >= 4) break;
      if (r.author !== authors[a] && Math.random() < 0.5) parents.push(r.id);
    }
    ts += Math.floor(Math.random() * 3);
    const id = new Uint8Array(randomBytes(32));
    const m: DagMessage = {
      id,
      author: authors[a]!,
      seq: own === undefined ? 0 : own.seq + 1,
      parents,
      timestamp: ts,
      signed: id,
    };
    messages.push(m);
    prev[a] = m;
    recent.unshift(m);
    if (recent.length > 8) recent.pop();
  }
  return { messages, authors };
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

const rate = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en-US')}/s`;
const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;

const SIZES = (process.argv[2] ?? '10000,100000').split(',').map(Number);

for (const n of SIZES) {
  const { messages, authors } = generate(n);

  const [, tLimit] = time(() => {
    const m = new Map<string, DagMessage>();
    for (const x of messages) m.set(Buffer.from(x.id.buffer, x.id.byteOffset, 32).toString('hex'), x);
    return m;
  });

  const [dag, tCausal] = time(() => {
    const d = new MessageDag();
    for (const m of messages) d.insert(m);
    return d;
  });
  const [, tShuffled] = time(() => {
    const d = new MessageDag();
    for (const m of shuffled(messages)) d.insert(m);
    return d;
  });
  const [order, tOrder] = time(() => dag.displayOrder());
  const [findings, tCheck] = time(() => new ConsistencyChecker(dag).check(Date.now()));
  const [, tAcks] = time(() => {
    let count = 0;
    for (const a of authors) for (const ack of dag.acknowledgementsFor(a)) count += ack.seenBy.length;
    return count;
  });
  const [, tChoose] = time(() => {
    for (let i = 0; i < 1000; i++) dag.chooseParents(authors[i % AUTHORS]!);
  });

  console.log(`dag n=${n.toLocaleString('en-US')} authors=${AUTHORS}`);
  console.log(`  insert, causal order     ${rate(n, tCausal)}   (limit: hex+Map.set ${rate(n, tLimit)})`);
  console.log(`  insert, shuffled order   ${rate(n, tShuffled)}`);
  console.log(`  displayOrder             ${ms(tOrder)} (${order.length} messages)`);
  console.log(`  check                    ${ms(tCheck)} (${findings.length} findings)`);
  console.log(`  acknowledgementsFor all  ${ms(tAcks)}`);
  console.log(`  chooseParents            ${rate(1000, tChoose)}`);
  const k = `${n / 1000}k`;
  const limit = { name: 'hex+Map.set', value: n / tLimit, unit: '/s' };
  emitResult({
    id: `dag.insert-causal-${k}`,
    name: `insert ${k}, causal order`,
    value: n / tCausal,
    unit: '/s',
    raw: limit,
  });
  emitResult({
    id: `dag.insert-shuffled-${k}`,
    name: `insert ${k}, shuffled order`,
    value: n / tShuffled,
    unit: '/s',
    raw: limit,
  });
  emitResult({ id: `dag.check-${k}`, name: `consistency check of ${k}`, value: tCheck * 1000, unit: 'ms' });
}
