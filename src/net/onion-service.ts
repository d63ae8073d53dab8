/**
 * Publishing a relay (or any identity) as a Tor v3 onion service from its own Ed25519 key, so
 * that the onion address IS the identity address src/identity computes (rend-spec-v3 §6).
 *
 * The key reaches tor only over the control connection (ADD_ONION ED25519-V3:<expanded key>),
 * never a torrc or a file; the command buffer is wiped after the write, and errors never repeat
 * the command. Without the Detach flag the service lives as long as the control connection: if
 * the relay dies, tor withdraws the service by itself.
 */
import { ED25519_SECRET_BYTES, ed25519ExpandedSecretKey, wipe } from '../crypto/index.ts';
import { assertBytes, InternalError, UsageError } from '../errors.ts';
import { ONION_ADDRESS_LENGTH } from '../identity/onion.ts';
import type { ControlReply } from './control-reply.ts';
import { parseKeywords } from './control-reply.ts';
import type { TorControl } from './tor-control.ts';

export interface OnionTarget {
  /** Port clients dial on the onion address (80 for ws://ADDRESS.onion). */
  readonly virtualPort: number;
  /** Loopback address the service forwards to. */
  readonly host: string;
  readonly port: number;
}

export interface PublishedOnion {
  /** The 56-character address, without ".onion". */
  readonly serviceId: string;
  /** Remove the service (DEL_ONION); harmless when the connection is already gone. */
  remove(): Promise<void>;
}

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** Standard padded base64 written into a Buffer (no JS string holds the secret). */
function base64Into(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(bytes.length / 3) * 4, 0x3d);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o++] = B64[(n >> 18) & 63]!;
    out[o++] = B64[(n >> 12) & 63]!;
    if (i + 1 < bytes.length) out[o] = B64[(n >> 6) & 63]!;
    o++;
    if (i + 2 < bytes.length) out[o] = B64[n & 63]!;
    o++;
  }
  return out;
}

function assertTarget(t: OnionTarget): void {
  for (const [name, v] of [
    ['virtualPort', t.virtualPort],
    ['port', t.port],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw new UsageError('bad-argument', `${name} must be 1..65535`);
  }
  if (!/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/.test(t.host)) {
    throw new UsageError('bad-argument', 'an onion service forwards to a loopback address only');
  }
}

/**
 * Publish an onion service whose key is `secretKey` (a 64-byte libsodium Ed25519 secret key).
 * Checks that tor's ServiceID is the address of `publicKey`.
 * @throws TorRefusedError when tor refuses (e.g. 550 onion address collision: already published);
 *   InternalError 'onion-address-mismatch' when tor names another address.
 */
export async function addOnion(
  control: TorControl,
  secretKey: Uint8Array,
  expectedAddress: string,
  target: OnionTarget,
): Promise<PublishedOnion> {
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  assertTarget(target);
  const expanded = ed25519ExpandedSecretKey(secretKey);
  const encoded = base64Into(expanded);
  const line = Buffer.concat([
    Buffer.from('ADD_ONION ED25519-V3:'),
    encoded,
    Buffer.from(` Port=${target.virtualPort},${target.host}:${target.port}`),
  ]);
  let reply: ControlReply;
  try {
    const pending = control.command(line, 'ADD_ONION');
    wipe(expanded, encoded, line);
    reply = await pending;
  } finally {
    wipe(expanded, encoded, line);
  }
  let serviceId: string | null = null;
  for (const l of reply.lines) {
    const id = parseKeywords(l.text).pairs.get('ServiceID');
    if (id !== undefined) serviceId = id;
  }
  if (serviceId === null || serviceId.length !== ONION_ADDRESS_LENGTH) {
    throw new InternalError('onion-address-mismatch', 'tor did not name the published service');
  }
  if (serviceId !== expectedAddress.replace(/\.onion$/, '')) {
    // Remove what tor published under an address nobody expects.
    await control.command(`DEL_ONION ${serviceId}`).catch(() => {});
    throw new InternalError(
      'onion-address-mismatch',
      `tor published ${serviceId}.onion, but the key's address is ${expectedAddress}`,
    );
  }
  const id = serviceId;
  let removed = false;
  return {
    serviceId: id,
    async remove() {
      if (removed || control.closed) return;
      removed = true;
      await control.command(`DEL_ONION ${id}`);
    },
  };
}

/**
 * Resolve when tor reports the first successful upload of `serviceId`'s descriptor to an HSDir
 * (HS_DESC UPLOADED): from then on clients can find the service. Subscribe BEFORE publishing;
 * call the returned `wait`.
 * @throws UsageError 'onion-publish-timeout' after `timeoutMs`, with the last failure tor reported.
 */
export async function watchDescriptorUpload(
  control: TorControl,
  serviceIdOf: () => string | null,
): Promise<{ wait(timeoutMs: number): Promise<void>; stop(): Promise<void> }> {
  let uploaded = false;
  let lastFailure: string | null = null;
  let wake: (() => void) | null = null;
  const off = await control.on('HS_DESC', (r) => {
    const { words, pairs } = parseKeywords(r.lines[0]!.text);
    // HS_DESC Action HSAddress AuthType HsDir …
    if (words[2] !== serviceIdOf()) return;
    if (words[1] === 'UPLOADED') {
      uploaded = true;
      wake?.();
    } else if (words[1] === 'FAILED') lastFailure = pairs.get('REASON') ?? 'unknown reason';
  });
  return {
    async wait(timeoutMs: number) {
      if (uploaded) return;
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          wake = resolve;
          timer = setTimeout(
            () =>
              reject(
                new UsageError(
                  'onion-publish-timeout',
                  `tor did not upload the onion service descriptor within ${Math.round(timeoutMs / 1000)} s${lastFailure ? ` (last failure: ${lastFailure})` : ''}`,
                ),
              ),
            timeoutMs,
          );
          control.onClose((e) =>
            reject(e ?? new UsageError('tor-control-closed', 'control connection closed')),
          );
        });
      } finally {
        clearTimeout(timer);
      }
    },
    stop: off,
  };
}
