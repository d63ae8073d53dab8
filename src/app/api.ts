/**
 * The app's JSON API: every route is a call on the client's reader-facing API (groupView,
 * docs/ARCHITECTURE.md) or one of its actions, run through the session one at a time. Inputs are
 * checked here, before any side effect.
 */
import { buildAudit } from '../client/accountability/audit.ts';
import { groupView } from '../client/group-view.ts';
import { UsageError } from '../errors.ts';
import { MAX_BODY_BYTES } from '../group/message.ts';
import type { AppSession } from './session.ts';
import type { ApiRequest } from './surface.ts';

function field(body: unknown, name: string, maxBytes = 4096): string {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof v !== 'string' || Buffer.byteLength(v) > maxBytes) {
    throw new UsageError('bad-argument', `"${name}" must be text of at most ${maxBytes} bytes`);
  }
  return v;
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
          groups: [...client.groups.values()].map((g) => ({
            key: g.key,
            name: g.record.name,
            unread: session.unread(g.key, g.dag.size),
          })),
          relays: session.relayStatus(),
        }));
      case 'GET groups/:key':
        return session.serial(() => groupView(client, key!));
      case 'GET groups/:key/audit':
        return session.serial(() => buildAudit(client, key!));
      case 'POST groups/:key/read':
        return session.serial(() => {
          const g = client.resolveGroup(key!);
          session.markRead(g.key, g.dag.size);
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
        return session.serial(async () => ({ invite: await client.invite(key!) }));
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
