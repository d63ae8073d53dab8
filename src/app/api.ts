/**
 * The app's JSON API: every route is a call on the client's reader-facing API (groupView,
 * docs/ARCHITECTURE.md) or one of its actions, run through the session one at a time. Inputs are
 * checked here, before any side effect.
 */
import { buildAudit } from '../client/accountability/audit.ts';
import {
  acceptMember,
  blockMember,
  resolveMember,
  unblockMember,
  vouchFor,
} from '../client/accountability/policy.ts';
import type { Client, GroupState } from '../client/client.ts';
import { describeFork, forkGroup, listForks } from '../client/forks/forks.ts';
import { groupView } from '../client/group-view.ts';
import { leaveGroup } from '../client/leave.ts';
import { setDisappear } from '../client/retention.ts';
import { UsageError } from '../errors.ts';
import { MAX_BODY_BYTES } from '../group/message.ts';
import { toHex } from '../wire/bytes.ts';
import { findingPicture } from './finding-picture.ts';
import { qrMatrix } from './invite-qr.ts';
import type { AppSession } from './session.ts';
import type { ApiRequest } from './surface.ts';

function field(body: unknown, name: string, maxBytes = 4096): string {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof v !== 'string' || Buffer.byteLength(v) > maxBytes) {
    throw new UsageError('bad-argument', `"${name}" must be text of at most ${maxBytes} bytes`);
  }
  return v;
}

/** The member actions of the members panel (docs/CLI.md `vouch`, `accept`, `block`, `unblock`). */
const MEMBER_ACTIONS = ['vouch', 'accept', 'block', 'unblock'] as const;
type MemberAction = (typeof MEMBER_ACTIONS)[number];

/** Most members one fork request may leave out (a group's member list is far smaller). */
const MAX_EXCLUDED = 256;

function addressList(body: unknown, name: string): string[] {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (
    !Array.isArray(v) ||
    v.length > MAX_EXCLUDED ||
    !v.every((x): x is string => typeof x === 'string' && x.length <= 128)
  ) {
    throw new UsageError(
      'bad-argument',
      `"${name}" must be a list of at most ${MAX_EXCLUDED} member addresses`,
    );
  }
  return v;
}

/** The forks announced in a group, and what each is for us; `replacedBy` names one we now use. */
function forksOf(client: Client, state: GroupState) {
  const forks = listForks(client, state).map((f) => ({
    name: f.name,
    status: f.status,
    childKey: client.groupOfKey(toHex(f.child)) === undefined ? null : toHex(f.child),
    text: describeFork(client, f),
  }));
  const replacedBy = forks.find((f) => (f.status === 'mine' || f.status === 'joined') && f.childKey !== null);
  return {
    forks,
    replacedBy: replacedBy === undefined ? null : { name: replacedBy.name, key: replacedBy.childKey },
  };
}

export function apiHandler(session: AppSession): (req: ApiRequest) => Promise<unknown> {
  const client = session.client;
  return (req) => {
    const [head, key, action] = req.path;
    const route = `${req.method} ${head ?? ''}${key === undefined ? '' : '/:key'}${action === undefined ? '' : `/${action}`}`;
    switch (route) {
      case 'GET state':
        return session.serial(() => ({
          me: { name: client.name, address: client.address },
          maxMessageBytes: MAX_BODY_BYTES,
          // Groups left (docs/CLI.md `group leave`) are not offered.
          groups: [...client.groups.values()]
            .filter((g) => !client.left.has(g.key))
            .map((g) => ({
              key: g.key,
              name: g.record.name,
              unread: session.unread(g.key, g.summary.messages),
            })),
          relays: session.relayStatus(),
        }));
      case 'GET groups/:key':
        return session.serial(() => {
          const state = client.resolveGroup(key!);
          return { ...groupView(client, key!), ...forksOf(client, state), left: client.left.has(state.key) };
        });
      case 'GET groups/:key/audit':
        return session.serial(async () => {
          const state = client.resolveGroup(key!);
          const findings = client.findings(key!);
          const { clean, items, relays } = await buildAudit(client, key!);
          // The audit's first items are the transcript's findings, in the checker's order (audit.ts).
          return {
            clean,
            relays,
            items: items.map((item, i) => ({
              ...item,
              picture: i < findings.length ? findingPicture(state, findings[i]!) : null,
            })),
          };
        });
      case 'GET groups/:key/evidence':
        // The bundle `audit --export` writes (src/client/accountability/evidence.ts); the page saves it.
        return session.serial(async () => (await buildAudit(client, key!)).bundle);
      case 'POST groups/:key/member': {
        const action = field(req.body, 'action', 16) as MemberAction;
        if (!MEMBER_ACTIONS.includes(action))
          throw new UsageError('bad-argument', `"action" must be one of ${MEMBER_ACTIONS.join(', ')}`);
        const member = field(req.body, 'member', 128);
        return session
          .serial(async () => {
            const state = client.resolveGroup(key!);
            const author = resolveMember(state, member);
            if (action === 'vouch') await vouchFor(client, state, author);
            else if (action === 'accept') acceptMember(client, state, author);
            else if (action === 'block') blockMember(client, state, author);
            else unblockMember(client, state, author);
            return state;
          })
          .then(async (state) => {
            if (action === 'vouch') await session.flush(state.record.relays.map((r) => r.url));
            return { ok: true };
          });
      }
      case 'POST groups/:key/fork': {
        const exclude = addressList(req.body, 'exclude');
        const raw = (req.body as Record<string, unknown>).name;
        const name = raw === undefined || raw === '' ? undefined : field(req.body, 'name', 64).trim();
        return session
          .serial(async () => {
            const parent = client.resolveGroup(key!);
            const fork = await forkGroup(client, key!, {
              exclude: exclude.map((m) => m.trim()),
              ...(name === undefined ? {} : { name }),
            });
            return { parent, fork };
          })
          .then(async ({ parent, fork }) => {
            await session.flush([
              ...new Set([...parent.record.relays, ...fork.child.record.relays].map((r) => r.url)),
            ]);
            return { key: fork.child.key, name: fork.child.record.name, excluded: fork.excluded.length };
          });
      }
      case 'POST groups/:key/leave':
        // Nothing is posted: the others are not told (docs/CLI.md `group leave`).
        return session.serial(() => {
          const { state, now, unsent } = leaveGroup(client, key!);
          return { key: state.key, name: state.record.name, alreadyLeft: !now, unsent };
        });
      case 'POST groups/:key/disappear': {
        // "off" or a whole number of ms; setDisappear checks the range (docs/CLI.md `group disappear`).
        const after = field(req.body, 'after', 16);
        if (after !== 'off' && !/^[0-9]{1,12}$/.test(after))
          throw new UsageError('bad-duration', '"after" is "off" or a whole number of milliseconds');
        return session.serial(() => {
          const g = client.resolveGroup(key!);
          const r = setDisappear(client, g, after === 'off' ? null : Number(after));
          return { key: g.key, pruned: r.pruned };
        });
      }
      case 'POST groups/:key/read':
        return session.serial(() => {
          const g = client.resolveGroup(key!);
          session.markRead(g.key, g.summary.messages);
          return { unread: 0 };
        });
      case 'POST groups': {
        const name = field(req.body, 'name', 64).trim();
        const relay = field(req.body, 'relay', 512).trim();
        if (name.length === 0) throw new UsageError('bad-name', 'a group needs a name');
        return session
          .serial(() => client.createGroup(name, [relay]))
          .then(async ({ group, invite }) => {
            await session.flush(group.record.relays.map((r) => r.url));
            return { key: group.key, name: group.record.name, invite };
          });
      }
      case 'POST join': {
        // Pasted invites keep their line breaks and spaces; none belong to the invite itself.
        const text = field(req.body, 'invite', 16384).replace(/\s+/g, '');
        return session
          .serial(() => client.joinGroup(text))
          .then(async (group) => {
            await session.flush(group.record.relays.map((r) => r.url));
            return { key: group.key, name: group.record.name };
          });
      }
      case 'POST groups/:key/invite':
        return session.serial(async () => {
          const invite = await client.invite(key!);
          return { invite, qr: qrMatrix(invite) };
        });
      case 'POST groups/:key/messages': {
        const text = field(req.body, 'text', MAX_BODY_BYTES);
        return session
          .serial(async () => {
            const g = client.resolveGroup(key!);
            await client.sendText(g.key, text);
            return g;
          })
          .then(async (g) => {
            await session.flush(g.record.relays.map((r) => r.url));
            return { ok: true };
          });
      }
      default:
        throw new UsageError('not-found', `no such API call: ${req.method} /api/${req.path.join('/')}`);
    }
  };
}
