/**
 * The world of the process-level man-in-the-middle tests (test/adversarial/mitm-*.test.ts): the
 * e2e world (test/e2e/world.ts: a real relay process, members' profiles, fresh CLI processes) with
 * the proxy of mitm-proxy.ts in front of the relay. Groups are created with the proxy's URL and
 * every command a member runs through the world is labelled with the member's name first, so the
 * proxy's script applies to the right member's connections.
 *
 * Not test/adversarial/world.ts: that world runs members as in-process clients behind an
 * EvilRelay; these tests run the CLI as a person does.
 */
import { type Front, World, type WorldOptions, type WorldParts, worldParts } from '../e2e/world.ts';
import { cloneRelay, MitmProxy } from './mitm-proxy.ts';
import type { RelayProcess } from './relay-process.ts';

export class MitmWorld<N extends string> extends World<N> {
  readonly proxy: MitmProxy;

  constructor(parts: WorldParts<N>, proxy: MitmProxy) {
    super(parts);
    this.proxy = proxy;
  }

  /**
   * What an operator does to fork or back up its relay: stop it, start a second relay on a copy of
   * its data directory (same keys and origin, same options), and start the original again on its
   * port. Returns the copy, which the test adds to the proxy as a backend; close() stops it.
   */
  async forkRelay(): Promise<RelayProcess> {
    await this.relay.stop();
    const copy = await cloneRelay(this.relay, this.relayArgs);
    this.onClose(async () => {
      await copy.relay.stop();
      copy.remove();
    });
    await this.restartRelay();
    return copy.relay;
  }
}

export async function startMitmWorld<N extends string>(opts: WorldOptions<N>): Promise<MitmWorld<N>> {
  let proxy: MitmProxy | undefined;
  const parts = await worldParts(opts, async (relay): Promise<Front> => {
    proxy = await MitmProxy.start(relay.url);
    return proxy;
  });
  return new MitmWorld(parts, proxy!);
}
