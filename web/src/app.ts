/**
 * The cwtch-groups web app: plain DOM code, no library, no external request. Everything a member
 * wrote (bodies, names) goes into text nodes through `el()`, never into HTML.
 */

import { keepChildren } from './keep-children.js';
import { unlockFirst } from './unlock.js';

interface GroupSummary {
  key: string;
  name: string;
  unread: number;
}
interface RelayStatus {
  url: string;
  live: boolean;
  lastSyncMs: number | null;
  error: string | null;
  verifiedSize: number | null;
  viaTor: boolean;
}
interface State {
  me: { name: string; address: string };
  maxMessageBytes: number;
  groups: GroupSummary[];
  relays: RelayStatus[];
}
interface ViewMessage {
  id: string;
  author: string;
  authorName: string | null;
  isMine: boolean;
  timestamp: number;
  kind: number;
  text: string | null;
  seenByMembers: { address: string; name: string | null }[];
  delivery: { state: string; relays: { relay: string; receipted: boolean }[] } | null;
  authorLookAlikeOf: string[];
}
interface ViewMember {
  address: string;
  name: string | null;
  isMe: boolean;
  status: string;
  blocked: boolean;
  vouchedBy: string[];
  malice: string[];
  lookAlikeOf: string[];
}
interface GroupView {
  group: { name: string; id: string; policy: string };
  messages: ViewMessage[];
  members: ViewMember[];
  findings: { type: string; detail: string; author: string | null }[];
  relays: { url: string; verifiedSize: number | null }[];
  forks: { name: string | null; status: string; childKey: string | null; text: string }[];
  replacedBy: { name: string | null; key: string | null } | null;
  pruned: { count: number; disappearAfterMs: number | null };
}
interface PictureNode {
  id: string;
  role: 'present' | 'missing' | 'conflict';
  author: string | null;
  caption: string;
  column: number;
}
interface FindingPicture {
  type: string;
  nodes: PictureNode[];
  edges: { from: string; to: string }[];
}
interface AuditItem {
  type: string;
  title: string;
  who: string;
  since: string;
  what: string;
  advice: string;
}
interface Audit {
  clean: boolean;
  items: (AuditItem & { picture: FindingPicture | null })[];
  relays: { url: string; verifiedSize: number; status: string }[];
}

/** What the group protocol's other message kinds mean (MessageKind in src/group/message.ts). */
const KIND_WORDS: Record<number, string> = {
  1: 'acknowledged the messages before',
  2: 'invited someone',
  3: 'announced a fork',
  4: 'vouched for a member',
  5: 'joined the group',
};

function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`missing #${id}`);
  return e;
}

/** An element with text content only: the one way member text enters the page. */
function el(tag: string, cls: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  if (cls !== '') e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/api/${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    credentials: 'same-origin',
  });
  const data = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new Error(data.error?.message ?? `HTTP ${res.status}`);
  return data;
}

let state: State | null = null;
let current: string | null = null;
/**
 * The group whose view is on the page. It differs from `current` between opening a group and
 * drawing it (an answer that may wait behind a sync): what she does on the page (send, invite,
 * fork, leave, disappear, export) is about the group she sees, so it acts on this one.
 */
let drawn: string | null = null;

/** True while `group` is both the one opened and the one drawn: an answer about it may be shown. */
function onPage(group: string): boolean {
  return group === current && group === drawn;
}

function showError(e: unknown): void {
  $('error').textContent = e instanceof Error ? e.message : String(e);
}

/** "1 problem", "2 problems". */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function short(address: string): string {
  return address.slice(0, 8);
}

function nameOf(name: string | null, address: string): string {
  return name ?? short(address);
}

/**
 * Refreshes run concurrently (one per event from the service) and their answers can arrive out of
 * order: an answer older than one already shown is dropped, so the page never goes back in time.
 */
class Freshness {
  #asked = 0;
  #shown = 0;
  ask(): number {
    return ++this.#asked;
  }
  /** Whether the answer to `ticket` is newer than what is shown; if so it becomes what is shown. */
  show(ticket: number): boolean {
    if (ticket < this.#shown) return false;
    this.#shown = ticket;
    return true;
  }
}
const stateFreshness = new Freshness();
const groupFreshness = new Freshness();
const auditFreshness = new Freshness();

async function refreshState(): Promise<void> {
  const ticket = stateFreshness.ask();
  const fresh = await api<State>('GET', 'state');
  if (!stateFreshness.show(ticket)) return;
  state = fresh;
  $('me').textContent = `${state.me.name} (${short(state.me.address)})`;
  keepChildren(
    $('relays'),
    state.relays.map((r) => {
      const parts = [
        r.live ? 'live' : 'not connected',
        r.verifiedSize === null ? 'log not verified yet' : `log verified: ${r.verifiedSize} entries`,
        r.lastSyncMs === null ? 'never synced' : `last sync ${new Date(r.lastSyncMs).toLocaleTimeString()}`,
        r.viaTor ? 'through Tor' : 'direct (no Tor)',
      ];
      const span = el('span', r.live ? 'relay live' : 'relay down', `${r.url}: ${parts.join(', ')}`);
      if (r.error !== null) span.title = r.error;
      return { key: r.url, element: span };
    }),
  );
  keepChildren(
    $('groups'),
    state.groups.map((g) => {
      const li = el('li', g.key === current ? 'active' : '');
      li.dataset.key = g.key;
      const b = el('button', '', g.name);
      b.setAttribute('type', 'button');
      if (g.unread > 0 && g.key !== current) b.append(el('span', 'unread', String(g.unread)));
      b.addEventListener('click', () => void openGroup(g.key));
      li.append(b);
      return { key: g.key, element: li };
    }),
  );
}

function marksOf(m: ViewMember | undefined): HTMLElement[] {
  if (m === undefined) return [];
  const out: HTMLElement[] = [];
  if (m.malice.length > 0) out.push(el('span', 'mark malice', `⚠ ${m.malice.join(', ')}`));
  if (m.blocked) out.push(el('span', 'mark blocked', 'blocked'));
  else if (m.vouchedBy.length > 0) out.push(el('span', 'mark vouched', 'vouched'));
  else if (m.status === 'unverified') out.push(el('span', 'mark unverified', 'unverified'));
  if (m.lookAlikeOf.length > 0)
    out.push(el('span', 'mark lookalike', `name looks like ${m.lookAlikeOf.map(short).join(', ')}`));
  return out;
}

function deliveryText(m: ViewMessage): string {
  if (m.delivery === null) return '';
  if (m.seenByMembers.length > 0) return `seen by ${m.seenByMembers.map((s) => nameOf(s.name, s.address)).join(', ')}`;
  if (m.delivery.state === 'queued') {
    const waiting = m.delivery.relays.filter((r) => !r.receipted).map((r) => r.relay);
    const why = waiting.map((url) => {
      const r = state?.relays.find((x) => x.url === url);
      if (r === undefined || r.live) return `${url} has not answered yet`;
      return `${url} is unreachable${r.error === null ? '' : ` (${r.error})`}; sent when it is back`;
    });
    return `queued: ${why.join('; ')}`;
  }
  return m.delivery.state === 'receipted' ? 'receipted by the relay' : '';
}

const DURATION_WORDS: Record<string, string> = {
  '3600000': '1 hour',
  '86400000': '1 day',
  '604800000': '7 days',
  '2592000000': '30 days',
};

function prunedText(p: GroupView['pruned']): string {
  const setting =
    p.disappearAfterMs === null
      ? ''
      : `; messages disappear ${DURATION_WORDS[String(p.disappearAfterMs)] ?? `${Math.round(p.disappearAfterMs / 1000)} s`} after this profile received them`;
  return `${p.count} earlier message${p.count === 1 ? '' : 's'} pruned from this profile${setting}`;
}

/** What she typed in each group other than the one drawn and did not send (page memory only). */
const drafts = new Map<string, string>();

/**
 * The compose box follows the group drawn: each group keeps its own unsent text, so what she typed
 * for one group is not in the box, ready to send, when she opens another.
 */
function switchDraft(to: string): void {
  if (drawn === to) return;
  const box = $('compose') as HTMLTextAreaElement;
  if (drawn !== null && box.value !== '') drafts.set(drawn, box.value);
  box.value = drafts.get(to) ?? '';
  drafts.delete(to);
  updateSize();
}

/** Draws the view of `group` (the key its answer was asked for). */
function renderView(group: string, v: GroupView): void {
  switchDraft(group);
  drawn = group;
  $('group-name').textContent = v.group.name;
  const members = new Map(v.members.map((m) => [m.address, m]));
  const items: { key: string; element: HTMLElement }[] = [];
  // Pruned messages are counted, never shown (docs/CLI.md `group prune`, `group disappear`).
  if (v.pruned.count > 0) items.push({ key: 'pruned', element: el('li', 'pruned', prunedText(v.pruned)) });
  ($('disappear-select') as HTMLSelectElement).value = String(v.pruned.disappearAfterMs ?? 'off');
  let day = '';
  for (const m of v.messages) {
    const when = new Date(m.timestamp);
    const d = when.toLocaleDateString();
    if (d !== day) {
      day = d;
      items.push({ key: `day ${d}`, element: el('li', 'day', d) });
    }
    const li = el('li', m.isMine ? 'mine' : '');
    li.dataset.id = m.id;
    li.append(el('span', 'author', nameOf(m.authorName, m.author)), ...marksOf(members.get(m.author)));
    li.append(el('span', 'time', when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    li.append(el('div', 'body', m.kind === 0 ? (m.text ?? '(not text)') : (KIND_WORDS[m.kind] ?? 'a protocol message')));
    if (m.isMine) li.append(el('div', 'state', deliveryText(m)));
    items.push({ key: `message ${m.id}`, element: li });
  }
  const box = $('messages');
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 10;
  keepChildren(box, items);
  if (atBottom) box.scrollTop = box.scrollHeight;
  keepChildren(
    $('members'),
    v.members.map((m) => ({ key: m.address, element: memberItem(group, m) })),
  );
  keepChildren(
    $('forks'),
    v.forks.length === 0
      ? [{ key: 'none', element: el('li', 'none', 'no forks') }]
      : v.forks.map((f, i) => ({ key: `fork ${i}`, element: el('li', 'fork', f.text) })),
  );
  const banner = $('group-banner');
  banner.hidden = v.replacedBy === null;
  banner.textContent =
    v.replacedBy === null
      ? ''
      : `This group was replaced by the fork "${v.replacedBy.name ?? '?'}": write there. This one stays readable.`;
  keepChildren(
    $('fork-members'),
    v.members
      .filter((m) => !m.isMe)
      .map((m) => {
        const li = el('li', '');
        const label = el('label', '');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = m.address;
        // Nobody blocked or flagged is ticked unless she ticks them; what she chose stays chosen
        // through refreshes, even when the member's marks change. Her choice is an attribute too, so
        // a box she touched never counts as equal to an untouched one (keep-children.ts).
        box.defaultChecked = !m.blocked && m.malice.length === 0;
        const chosen = forkChoices.get(m.address);
        if (chosen !== undefined) {
          box.checked = chosen;
          box.dataset.chosen = String(chosen);
        }
        box.addEventListener('change', () => {
          forkChoices.set(m.address, box.checked);
          box.dataset.chosen = String(box.checked);
        });
        label.append(box, el('span', 'author', nameOf(m.name, m.address)), ...marksOf(m));
        li.append(label);
        return { key: m.address, element: li };
      }),
  );
}

/** The boxes she ticked or unticked in the open fork form, by member address. */
const forkChoices = new Map<string, boolean>();

function resetForkChoices(): void {
  forkChoices.clear();
  for (const box of $('fork-members').querySelectorAll('input[type=checkbox]') as NodeListOf<HTMLInputElement>) {
    box.checked = box.defaultChecked;
    delete box.dataset.chosen;
  }
}

/**
 * A member of the members panel: name, marks, and what I can do about them, in `group`. Its
 * buttons act on that group, the one the row shows, not on whichever is open when clicked (in the
 * moment between opening another group and drawing it, this group's rows are still on the page);
 * the group in the row's attributes keeps it from being kept for another group's panel.
 */
function memberItem(group: string, m: ViewMember): HTMLElement {
  const li = el('li', 'member');
  li.dataset.address = m.address;
  li.dataset.group = group;
  li.append(el('span', 'author', nameOf(m.name, m.address)));
  if (m.isMe) li.append(el('span', 'mark me', 'you'));
  li.append(...marksOf(m));
  li.append(el('div', 'address', m.address));
  if (m.isMe) return li;
  const actions = el('div', 'actions');
  const button = (action: string, label: string, title: string) => {
    const b = el('button', `act-${action}`, label);
    b.setAttribute('type', 'button');
    b.title = title;
    b.addEventListener('click', () => {
      $('error').textContent = '';
      api('POST', `groups/${encodeURIComponent(group)}/member`, { member: m.address, action })
        .then(() => refreshGroup())
        .catch(showError);
    });
    return b;
  };
  if (m.status === 'unverified')
    actions.append(button('accept', 'Accept', 'verified for you (nothing is posted)'));
  actions.append(button('vouch', 'Vouch', 'tell the group you vouch for this member (a signed message)'));
  actions.append(
    m.blocked
      ? button('unblock', 'Unblock', 'show their messages again')
      : button('block', 'Block', 'hide their messages from you (only you)'),
  );
  li.append(actions);
  return li;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes; member text goes in only through `textContent`. */
function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const NODE_W = 150;
const NODE_H = 40;
const COL_GAP = 14;
const ROW_GAP = 34;

/**
 * The message graph around a finding, newest on top, arrows from a message down to the messages
 * it replies to (its parents). Fits the narrow side panel: a level holds one or two messages.
 */
function pictureOf(p: FindingPicture): SVGElement {
  // Columns with no message drawn take no room: levels are the columns in use, oldest lowest.
  const used = [...new Set(p.nodes.map((n) => n.column))].sort((a, b) => a - b);
  const levels = used.length;
  const perLevel = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const n of p.nodes) {
    const slot = perLevel.get(n.column) ?? 0;
    perLevel.set(n.column, slot + 1);
    const level = used.indexOf(n.column);
    at.set(n.id, { x: 10 + slot * (NODE_W + COL_GAP), y: 10 + (levels - 1 - level) * (NODE_H + ROW_GAP) });
  }
  const wide = Math.max(...perLevel.values());
  const width = 20 + wide * NODE_W + (wide - 1) * COL_GAP;
  const height = 20 + levels * NODE_H + (levels - 1) * ROW_GAP;
  const root = svg('svg', {
    class: `picture ${p.type}`,
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
  });
  root.append(svg('title', {}, 'the messages around this finding; arrows point to the messages each one replies to'));
  const defs = svg('defs', {});
  const marker = svg('marker', {
    id: 'arrow',
    viewBox: '0 0 10 10',
    refX: 10,
    refY: 5,
    markerWidth: 8,
    markerHeight: 8,
    orient: 'auto',
  });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
  defs.append(marker);
  root.append(defs);
  for (const e of p.edges) {
    const a = at.get(e.from);
    const b = at.get(e.to);
    if (a === undefined || b === undefined) continue;
    root.append(
      svg('line', {
        class: 'edge',
        x1: a.x + NODE_W / 2,
        y1: a.y + NODE_H,
        x2: b.x + NODE_W / 2,
        y2: b.y,
        'marker-end': 'url(#arrow)',
      }),
    );
  }
  for (const n of p.nodes) {
    const { x, y } = at.get(n.id)!;
    const g = svg('g', { class: `node ${n.role}`, 'data-id': n.id });
    g.append(svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 6 }));
    const who = n.role === 'missing' && n.author === null ? 'missing message' : (n.author ?? '?');
    g.append(svg('text', { x: x + 6, y: y + 16, class: 'who' }, clip(who, 22)));
    g.append(svg('text', { x: x + 6, y: y + 32, class: 'caption' }, clip(n.caption, 24)));
    root.append(g);
  }
  return root;
}

function clip(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** The audit panel: each finding in plain words, with its picture when it has one. */
function renderAudit(a: Audit): void {
  $('audit-summary').textContent = a.clean
    ? 'Nothing wrong found: every message referred to has arrived and no one contradicted themselves.'
    : `${plural(a.items.length, 'problem')} found. Each says what happened, who may be responsible and what you can do.`;
  keepChildren(
    $('audit-items'),
    a.items.map((item) => {
      const li = el('li', `audit-item ${item.type}`);
      li.append(el('strong', 'title', item.title));
      const dl = el('dl', '');
      for (const [term, text] of [
        ['What happened', item.what],
        ['Who may be responsible', item.who],
        ['What to do', item.advice],
        ['First noticed', new Date(item.since).toLocaleString()],
      ] as const) {
        dl.append(el('dt', '', term), el('dd', '', text));
      }
      li.append(dl);
      if (item.picture !== null) li.append(pictureOf(item.picture));
      return { key: `${item.type} ${item.since} ${item.title}`, element: li };
    }),
  );
}

async function refreshAudit(): Promise<void> {
  const group = current;
  if (group === null) return;
  const ticket = auditFreshness.ask();
  const audit = await api<Audit>('GET', `groups/${encodeURIComponent(group)}/audit`);
  // Another group opened meanwhile: this answer is not about what the page shows.
  if (!onPage(group) || !auditFreshness.show(ticket)) return;
  renderAudit(audit);
  // Which answer the panel shows, for anyone checking it is current (the browser test does).
  $('audit-items').dataset.answer = String(ticket);
}

async function openGroup(key: string): Promise<void> {
  current = key;
  $('notice').textContent = '';
  $('chat').hidden = false;
  $('side').hidden = false;
  $('invite-out').textContent = '';
  $('invite-qr').replaceChildren();
  $('copy-button').hidden = true;
  $('copy-button').textContent = 'Copy';
  $('fork-form').hidden = true;
  resetForkChoices();
  await refreshGroup();
  await refreshState();
}

async function refreshGroup(): Promise<void> {
  const group = current;
  if (group === null) return;
  const ticket = groupFreshness.ask();
  const view = await api<GroupView>('GET', `groups/${encodeURIComponent(group)}`);
  // Another group opened meanwhile: showing this one under its name would mislead her.
  if (group !== current || !groupFreshness.show(ticket)) return;
  renderView(group, view);
  await api('POST', `groups/${encodeURIComponent(group)}/read`, {});
  await refreshAudit();
}

function updateSize(): void {
  const bytes = new TextEncoder().encode(($('compose') as HTMLTextAreaElement).value).length;
  const max = state?.maxMessageBytes ?? 0;
  $('compose-size').textContent = `${bytes} / ${max} bytes`;
}

function connectEvents(): void {
  const ws = new WebSocket(`ws://${location.host}/api/events`);
  ws.addEventListener('message', (ev) => {
    const e = JSON.parse(String(ev.data)) as { type: string; group?: string };
    // A relay coming back or a full sync can change delivery states and forks of any group.
    if (e.type !== 'group' || e.group === current) void refreshGroup().catch(showError);
    void refreshState().catch(showError);
  });
  ws.addEventListener('close', () => setTimeout(connectEvents, 2000));
}

function onSubmit(id: string, fn: () => Promise<void>): void {
  $(id).addEventListener('submit', (ev) => {
    ev.preventDefault();
    $('error').textContent = '';
    fn().catch(showError);
  });
}

onSubmit('compose-form', async () => {
  const box = $('compose') as HTMLTextAreaElement;
  const group = drawn;
  if (group === null) return;
  const text = box.value;
  await api('POST', `groups/${encodeURIComponent(group)}/messages`, { text });
  // The answer comes once the relay has receipted it; she may have typed her next message by
  // then, or opened another group (the sent text was then kept as this group's draft): clear
  // only what was sent.
  if (drawn === group) {
    if (box.value === text) box.value = '';
  } else if (drafts.get(group) === text) drafts.delete(group);
  updateSize();
  await refreshGroup();
});
onSubmit('create-form', async () => {
  const name = ($('create-name') as HTMLInputElement).value;
  const relay = ($('create-relay') as HTMLInputElement).value;
  const g = await api<{ key: string; invite: string }>('POST', 'groups', { name, relay });
  await openGroup(g.key);
});
onSubmit('join-form', async () => {
  const box = $('join-invite') as HTMLTextAreaElement;
  const invite = box.value;
  const g = await api<{ key: string }>('POST', 'join', { invite });
  // Another invite pasted while this one was joining stays for her to join next.
  if (box.value === invite) box.value = '';
  await openGroup(g.key);
});
$('invite-button').addEventListener('click', () => {
  const group = drawn;
  if (group === null) return;
  api<{ invite: string; qr: { size: number; rows: string[] } }>(
    'POST',
    `groups/${encodeURIComponent(group)}/invite`,
    {},
  )
    .then(({ invite, qr }) => {
      // She opened another group meanwhile: this invite shown under its name would let her hand
      // someone the key to the wrong group.
      if (!onPage(group)) return;
      $('invite-out').textContent = invite;
      $('copy-button').hidden = false;
      $('invite-qr').replaceChildren(qrPicture(qr));
    })
    .catch(showError);
});
$('copy-button').addEventListener('click', () => {
  const text = $('invite-out').textContent ?? '';
  navigator.clipboard
    .writeText(text)
    .then(() => {
      $('copy-button').textContent = 'Copied';
    })
    .catch(showError);
});

/** The invite's QR code: one path of unit squares, built from the module matrix (no markup). */
function qrPicture(qr: { size: number; rows: string[] }): SVGElement {
  const quiet = 4;
  const side = qr.size + 2 * quiet;
  let d = '';
  qr.rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) if (row[x] === '1') d += `M${x + quiet},${y + quiet}h1v1h-1z`;
  });
  const root = svg('svg', { class: 'qr', viewBox: `0 0 ${side} ${side}`, width: 240, height: 240, role: 'img' });
  root.append(svg('title', {}, 'the invite as a QR code'));
  root.append(svg('rect', { x: 0, y: 0, width: side, height: side, class: 'qr-light' }));
  root.append(svg('path', { d, class: 'qr-dark', 'data-modules': qr.size }));
  return root;
}
$('compose').addEventListener('input', updateSize);
$('fork-button').addEventListener('click', () => {
  const form = $('fork-form');
  form.hidden = !form.hidden;
  // Each opening starts from the defaults: nobody flagged or blocked is ticked.
  if (!form.hidden) resetForkChoices();
});
onSubmit('fork-form', async () => {
  const group = drawn;
  if (group === null) return;
  const boxes = [...$('fork-members').querySelectorAll('input[type=checkbox]')] as HTMLInputElement[];
  const exclude = boxes.filter((b) => !b.checked).map((b) => b.value);
  const name = ($('fork-name') as HTMLInputElement).value.trim();
  const fork = await api<{ key: string }>('POST', `groups/${encodeURIComponent(group)}/fork`, { exclude, name });
  $('fork-form').hidden = true;
  await openGroup(fork.key);
});
// Disappearing messages are local to this profile (docs/CLI.md `group disappear`).
$('disappear-select').addEventListener('change', () => {
  const group = drawn;
  if (group === null) return;
  const after = ($('disappear-select') as HTMLSelectElement).value;
  api('POST', `groups/${encodeURIComponent(group)}/disappear`, { after })
    .then(() => refreshGroup())
    .catch(showError);
});
// Leaving erases the group's keys for good and tells nobody (docs/CLI.md `group leave`): confirm first.
$('leave-button').addEventListener('click', () => {
  const group = drawn;
  if (group === null) return;
  const name = state?.groups.find((g) => g.key === group)?.name ?? 'this group';
  if (!window.confirm(`Leave "${name}"? Its keys are erased and it is never synced again; the others are not told.`))
    return;
  api<{ unsent: number }>('POST', `groups/${encodeURIComponent(group)}/leave`, {})
    .then(async ({ unsent }) => {
      // Say what happened: the page otherwise just loses the group.
      $('notice').textContent = `Left "${name}": its keys are erased and it is never synced again; the others were not told.${
        unsent > 0 ? ` ${plural(unsent, 'message')} of yours that no relay had taken stay unsent.` : ''
      }`;
      // What she typed there and did not send has no group to go to now: not kept as a draft.
      drafts.delete(group);
      if (group === drawn) ($('compose') as HTMLTextAreaElement).value = '';
      // She may have opened another group while it was leaving: that one stays on the page.
      if (group === current) {
        current = null;
        drawn = null;
        $('chat').hidden = true;
        $('side').hidden = true;
      }
      await refreshState();
    })
    .catch(showError);
});
$('audit-button').addEventListener('click', () => {
  $('audit').scrollIntoView();
  refreshAudit().catch(showError);
});
$('evidence-button').addEventListener('click', () => {
  const group = drawn;
  if (group === null) return;
  api<unknown>('GET', `groups/${encodeURIComponent(group)}/evidence`)
    .then((bundle) => {
      // A file the person can hand to anyone: `cwtch-groups evidence verify FILE` checks it offline.
      const blob = new Blob([`${JSON.stringify(bundle, null, 2)}\n`], { type: 'application/json' });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `evidence-${group.slice(0, 12)}.json`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    })
    .catch(showError);
});

unlockFirst()
  .then(refreshState)
  .then(() => {
    updateSize();
    connectEvents();
  })
  .catch(showError);
