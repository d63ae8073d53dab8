/**
 * The cwtch-groups web app: plain DOM code, no library, no external request. Everything a member
 * wrote (bodies, names) goes into text nodes through `el()`, never into HTML.
 */

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
}
interface ViewMember {
  address: string;
  name: string | null;
  isMe: boolean;
  status: string;
  blocked: boolean;
  vouchedBy: string[];
  malice: string[];
}
interface GroupView {
  group: { name: string; id: string; policy: string };
  messages: ViewMessage[];
  members: ViewMember[];
  findings: { type: string; detail: string; author: string | null }[];
  relays: { url: string; verifiedSize: number | null }[];
}

/** What the group protocol's other message kinds mean (MessageKind in src/group/message.ts). */
const KIND_WORDS: Record<number, string> = {
  1: 'acknowledged the messages before',
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

function showError(e: unknown): void {
  $('error').textContent = e instanceof Error ? e.message : String(e);
}

function short(address: string): string {
  return address.slice(0, 8);
}

function nameOf(name: string | null, address: string): string {
  return name ?? short(address);
}

async function refreshState(): Promise<void> {
  state = await api<State>('GET', 'state');
  $('me').textContent = `${state.me.name} (${short(state.me.address)})`;
  const relays = $('relays');
  relays.replaceChildren(
    ...state.relays.map((r) =>
      el(
        'span',
        'relay',
        `${r.url}: ${r.live ? 'live' : 'offline'}${r.lastSyncMs === null ? '' : `, synced ${new Date(r.lastSyncMs).toLocaleTimeString()}`}${r.error === null ? '' : ` (${r.error})`}; direct (no Tor) `,
      ),
    ),
  );
  const list = $('groups');
  list.replaceChildren(
    ...state.groups.map((g) => {
      const li = el('li', g.key === current ? 'active' : '');
      li.dataset.key = g.key;
      const b = el('button', '', g.name);
      b.setAttribute('type', 'button');
      if (g.unread > 0 && g.key !== current) b.append(el('span', 'unread', String(g.unread)));
      b.addEventListener('click', () => void openGroup(g.key));
      li.append(b);
      return li;
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
  return out;
}

function deliveryText(m: ViewMessage): string {
  if (m.delivery === null) return '';
  if (m.seenByMembers.length > 0) return `seen by ${m.seenByMembers.map((s) => nameOf(s.name, s.address)).join(', ')}`;
  if (m.delivery.state === 'queued') {
    const waiting = m.delivery.relays.filter((r) => !r.receipted).map((r) => r.relay);
    return `queued (not yet accepted by ${waiting.join(', ')})`;
  }
  return m.delivery.state === 'receipted' ? 'receipted by the relay' : '';
}

function renderView(v: GroupView): void {
  $('group-name').textContent = v.group.name;
  const members = new Map(v.members.map((m) => [m.address, m]));
  const items: HTMLElement[] = [];
  let day = '';
  for (const m of v.messages) {
    const when = new Date(m.timestamp);
    const d = when.toLocaleDateString();
    if (d !== day) {
      day = d;
      items.push(el('li', 'day', d));
    }
    const li = el('li', m.isMine ? 'mine' : '');
    li.dataset.id = m.id;
    li.append(el('span', 'author', nameOf(m.authorName, m.author)), ...marksOf(members.get(m.author)));
    li.append(el('span', 'time', when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    li.append(el('div', 'body', m.kind === 0 ? (m.text ?? '(not text)') : (KIND_WORDS[m.kind] ?? 'a protocol message')));
    if (m.isMine) li.append(el('div', 'state', deliveryText(m)));
    items.push(li);
  }
  const box = $('messages');
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 10;
  box.replaceChildren(...items);
  if (atBottom) box.scrollTop = box.scrollHeight;
  $('members').replaceChildren(
    ...v.members.map((m) => {
      const li = el('li', '');
      li.append(el('span', 'author', `${nameOf(m.name, m.address)}${m.isMe ? ' (you)' : ''}`), ...marksOf(m));
      return li;
    }),
  );
  $('findings').replaceChildren(...v.findings.map((f) => el('li', 'finding', `${f.type}: ${f.detail}`)));
}

async function openGroup(key: string): Promise<void> {
  current = key;
  $('chat').hidden = false;
  $('side').hidden = false;
  $('invite-out').textContent = '';
  await refreshGroup();
  await refreshState();
}

async function refreshGroup(): Promise<void> {
  if (current === null) return;
  renderView(await api<GroupView>('GET', `groups/${encodeURIComponent(current)}`));
  await api('POST', `groups/${encodeURIComponent(current)}/read`, {});
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
    if (e.type === 'group' && e.group === current) void refreshGroup().catch(showError);
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
  if (current === null) return;
  await api('POST', `groups/${encodeURIComponent(current)}/messages`, { text: box.value });
  box.value = '';
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
  const g = await api<{ key: string }>('POST', 'join', { invite: ($('join-invite') as HTMLTextAreaElement).value });
  ($('join-invite') as HTMLTextAreaElement).value = '';
  await openGroup(g.key);
});
$('invite-button').addEventListener('click', () => {
  if (current === null) return;
  api<{ invite: string }>('POST', `groups/${encodeURIComponent(current)}/invite`, {})
    .then(async ({ invite }) => {
      $('invite-out').textContent = invite;
      await navigator.clipboard?.writeText(invite).catch(() => undefined);
    })
    .catch(showError);
});
$('compose').addEventListener('input', updateSize);

refreshState()
  .then(() => {
    updateSize();
    connectEvents();
  })
  .catch(showError);
