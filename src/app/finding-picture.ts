/**
 * The message graph around one transcript finding, as plain data the web app draws (docs/CLI.md
 * `app`, "Audit"): the few messages a person needs to see what went wrong — the absent parent and
 * who cites it, the member's messages on both sides of a gap, the two messages an equivocating
 * member signed with one number. Built from what the profile holds; nothing is guessed. Names in
 * it come from members: the page shows them as text only.
 */
import type { Client, GroupState } from '../client/client.ts';
import { toHex } from '../wire/bytes.ts';

type Finding = ReturnType<Client['findings']>[number];

/** How a node is drawn: held, absent (never delivered), or one of a conflicting pair. */
export type PictureRole = 'present' | 'missing' | 'conflict';

export interface PictureNode {
  /** Message id (hex), or a made-up id for a gap of several messages. */
  readonly id: string;
  readonly role: PictureRole;
  /** Who wrote it, when known (a display name: untrusted text). */
  readonly author: string | null;
  /** A short caption: `#seq` and, for held text messages, the text's start (untrusted text). */
  readonly caption: string;
  /** Column, oldest left; nodes of one column are stacked. */
  readonly column: number;
}

/** A message naming another as a parent (from the newer to the older). */
export interface PictureEdge {
  readonly from: string;
  readonly to: string;
}

export interface FindingPicture {
  readonly type: string;
  readonly nodes: readonly PictureNode[];
  readonly edges: readonly PictureEdge[];
}

/** The most referencing messages drawn for one missing parent. */
const MAX_REFERENCING = 4;
const CAPTION_CHARS = 24;

type Msg = NonNullable<ReturnType<GroupState['dag']['get']>>;

function nameOf(state: GroupState, author: Uint8Array): string {
  return state.names.get(toHex(author)) ?? 'unnamed member';
}

function captionOf(m: Msg): string {
  const head = `#${m.seq}`;
  if (m.kind !== 0) return head;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(m.body);
  } catch {
    return head;
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return `${head} ${flat.length > CAPTION_CHARS ? `${flat.slice(0, CAPTION_CHARS)}…` : flat}`;
}

function node(state: GroupState, m: Msg, column: number, role: PictureRole = 'present'): PictureNode {
  return { id: toHex(m.id), role, author: nameOf(state, m.author), caption: captionOf(m), column };
}

function bySeq(state: GroupState, author: Uint8Array, seq: number): Msg | undefined {
  return state.dag.messagesBy(author).find((m) => m.seq === seq);
}

/** The picture of one finding; null for a finding with no graph to show (e.g. a malformed body). */
export function findingPicture(state: GroupState, f: Finding): FindingPicture | null {
  switch (f.type) {
    case 'missing-parent': {
      const citing = f.referencedBy
        .map((id) => state.dag.get(id))
        .filter((m): m is Msg => m !== undefined)
        .slice(0, MAX_REFERENCING);
      const missing: PictureNode = {
        id: toHex(f.parent),
        role: 'missing',
        author: null,
        caption: 'never delivered to you',
        column: 1,
      };
      const nodes: PictureNode[] = [missing];
      const edges: PictureEdge[] = [];
      for (const m of citing) {
        nodes.push(node(state, m, 2));
        for (const p of m.parents) {
          const id = toHex(p);
          edges.push({ from: toHex(m.id), to: id });
          if (nodes.some((n) => n.id === id)) continue;
          const held = state.dag.get(p);
          if (held !== undefined) nodes.push(node(state, held, 0));
        }
      }
      return { type: f.type, nodes, edges };
    }
    case 'author-gap': {
      const before = f.fromSeq > 0 ? bySeq(state, f.author, f.fromSeq - 1) : undefined;
      const after = bySeq(state, f.author, f.toSeq + 1);
      const count = f.toSeq - f.fromSeq + 1;
      const gapId = `gap-${f.fromSeq}-${f.toSeq}`;
      const nodes: PictureNode[] = [
        {
          id: gapId,
          role: 'missing',
          author: nameOf(state, f.author),
          caption: count === 1 ? `#${f.fromSeq} missing` : `#${f.fromSeq}–#${f.toSeq} missing`,
          column: 1,
        },
      ];
      const edges: PictureEdge[] = [];
      if (before !== undefined) {
        nodes.push(node(state, before, 0));
        edges.push({ from: gapId, to: toHex(before.id) });
      }
      if (after !== undefined) {
        nodes.push(node(state, after, 2));
        edges.push({ from: toHex(after.id), to: gapId });
      }
      return { type: f.type, nodes, edges };
    }
    case 'equivocation': {
      const pair = f.evidence.map((e) => state.dag.get(e.id)).filter((m): m is Msg => m !== undefined);
      const before = f.seq > 0 ? bySeq(state, f.author, f.seq - 1) : undefined;
      const nodes: PictureNode[] = pair.map((m) => node(state, m, 1, 'conflict'));
      const edges: PictureEdge[] = [];
      if (before !== undefined) {
        nodes.push(node(state, before, 0));
        for (const m of pair) edges.push({ from: toHex(m.id), to: toHex(before.id) });
      }
      return { type: f.type, nodes, edges };
    }
    default:
      return null;
  }
}
