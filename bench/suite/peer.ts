/**
 * The peer (issue 16, item 6): ts-mls (RFC 9420) receiving application messages of a 100-member
 * group, beside our open + verify + DAG insert of messages of the same size and the ceiling of a
 * Cwtch-style trial-decrypting client, measured together in one child process per run
 * (bench/lib/peer-mls.ts). See bench/README.md, "The peer".
 */
import { join } from 'node:path';
import { ROOT, runNodeScript } from '../lib/procs.ts';
import type { Row } from '../lib/report.ts';
import { fmt, median } from '../lib/stats.ts';

export const PEER_MEMBERS = 100;
/** The group counts at which the trial-decryption ceiling is printed (as in the sync section). */
export const TRIAL_GROUPS = 100;

interface Rate {
  readonly perCore: number;
  readonly wall: number;
}

interface PeerRun {
  readonly suite: string;
  readonly members: number;
  readonly messages: number;
  readonly mlsBytes: number;
  readonly oursBytes: number;
  readonly setupMs: number;
  readonly ours: Rate;
  readonly mls: Rate;
  readonly trial: Rate;
}

export async function peerSection(opts: {
  readonly quick: boolean;
  readonly runs: number;
  readonly log: (line: string) => void;
}): Promise<Row[]> {
  const messages = opts.quick ? 500 : 3000;
  const runs: PeerRun[] = [];
  for (let run = 0; run < opts.runs; run++) {
    opts.log(
      `peer: ts-mls, ${PEER_MEMBERS}-member group, ${fmt(messages)} messages (run ${run + 1}/${opts.runs})`,
    );
    const r = await runNodeScript(
      join(ROOT, 'bench/lib/peer-mls.ts'),
      [String(messages), String(PEER_MEMBERS)],
      {},
      600_000,
    );
    if (r.code !== 0) throw new Error(`peer-mls failed (${r.code}): ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerRun;
    if (out.members !== PEER_MEMBERS)
      throw new Error(`peer-mls: the receiver sees ${out.members} members, not ${PEER_MEMBERS}`);
    runs.push(out);
  }
  const first = runs[0]!;
  const group = `the peer: ts-mls (RFC 9420) receiving, ${PEER_MEMBERS}-member group, same message size, per core`;
  const ratios = runs.map((r) => r.ours.perCore / r.mls.perCore);
  return [
    {
      id: 'peer.mls',
      group,
      name: `ts-mls: decode + processPrivateMessage, ${PEER_MEMBERS} members`,
      short: 'ts-mls receive',
      unit: '/s',
      runs: runs.map((r) => r.mls.perCore),
      note:
        `peer: ts-mls ${first.suite}, ${PEER_MEMBERS} members (one commit of ${PEER_MEMBERS - 1} adds, set-up ` +
        `${fmt(median(runs.map((r) => r.setupMs)))} ms, not timed), ${fmt(first.messages)} messages of one sender, ` +
        `160-byte body padded to our plaintext size: ${fmt(first.mlsBytes)} bytes on the wire (ours ${fmt(first.oursBytes)}); ` +
        `wall ${fmt(median(runs.map((r) => r.mls.wall)))}/s against ours ${fmt(median(runs.map((r) => r.ours.wall)))}/s; ` +
        `ours ÷ ts-mls per run ${ratios.map((x) => x.toFixed(1)).join(', ')}`,
    },
    {
      id: 'peer.ours',
      group,
      name: 'ours: open + verify + DAG insert, same messages',
      unit: '/s',
      runs: runs.map((r) => r.ours.perCore),
      rawId: 'peer.mls',
    },
    {
      id: 'peer.trial',
      group,
      name: `Cwtch-style trial decryption ceiling, ${TRIAL_GROUPS} groups (failed AEAD opens ÷ ${TRIAL_GROUPS})`,
      unit: '/s',
      runs: runs.map((r) => r.trial.perCore / TRIAL_GROUPS),
      rawId: 'peer.mls',
    },
  ];
}
