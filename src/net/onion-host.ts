/**
 * Everything `relay --tor` needs: a tor (started and supervised, or an existing one reached on
 * its control port), bootstrapped, with the relay's identity published as an onion service whose
 * descriptor has reached the network.
 */
import { type CwtchError, UsageError } from '../errors.ts';
import { addOnion, type OnionTarget, type PublishedOnion, watchDescriptorUpload } from './onion-service.ts';
import { type BootstrapStatus, type ControlEndpoint, TorControl } from './tor-control.ts';
import { startTor, type TorProcess } from './tor-process.ts';

export interface OnionHostOptions {
  /** 64-byte Ed25519 secret key of the identity to publish, and its onion address. */
  readonly secretKey: Uint8Array;
  readonly address: string;
  readonly target: OnionTarget;
  /** Attach to this tor instead of starting one. */
  readonly control?: ControlEndpoint;
  /** DataDirectory of the tor we start. */
  readonly torDataDir: string;
  readonly torPath?: string;
  /** Extra torrc lines for the tor we start (tests: a private network). */
  readonly torConfig?: readonly string[];
  /** Bound on bootstrap, and separately on the first descriptor upload. */
  readonly timeoutMs?: number;
  readonly onBootstrap?: (s: BootstrapStatus) => void;
  /** The tor we started exited, or the control connection to an existing tor broke. */
  readonly onLost?: (e: CwtchError) => void;
}

export interface OnionHost {
  /** "ADDRESS.onion" */
  readonly hostname: string;
  /** The tor we started, or null when attached to an existing one. */
  readonly tor: TorProcess | null;
  /** Seconds from the start of {@link hostOnion} to bootstrap, and to the descriptor upload. */
  readonly bootstrapSeconds: number;
  readonly publishSeconds: number;
  /** Remove the service and stop our tor (if we started it). */
  close(): Promise<void>;
}

/**
 * @throws UsageError 'tor-missing' | 'tor-failed' | 'tor-control-unreachable' | 'tor-auth-…' |
 *   'tor-bootstrap-timeout' | 'onion-publish-timeout'; TorRefusedError when tor refuses the key.
 */
export async function hostOnion(opts: OnionHostOptions): Promise<OnionHost> {
  const start = performance.now();
  const timeoutMs = opts.timeoutMs ?? 300_000;
  let tor: TorProcess | null = null;
  let control: TorControl;
  if (opts.control !== undefined) {
    control = await TorControl.open(opts.control);
  } else {
    tor = await startTor({
      dataDir: opts.torDataDir,
      ...(opts.torPath === undefined ? {} : { torPath: opts.torPath }),
      ...(opts.torConfig === undefined ? {} : { extraConfig: opts.torConfig }),
    });
    control = tor.control;
  }
  let published: PublishedOnion | null = null;
  let closing = false;
  const close = async () => {
    closing = true;
    await published?.remove().catch(() => {});
    if (tor !== null) await tor.stop();
    else control.close();
  };
  control.onClose((e) => {
    if (!closing)
      opts.onLost?.(e ?? new UsageError('tor-control-closed', 'the tor control connection closed'));
  });
  try {
    await control.waitForBootstrap(opts.onBootstrap, timeoutMs);
    const bootstrapSeconds = (performance.now() - start) / 1000;
    const serviceId = opts.address.replace(/\.onion$/, '');
    const upload = await watchDescriptorUpload(control, () => serviceId);
    published = await addOnion(control, opts.secretKey, serviceId, opts.target);
    await upload.wait(timeoutMs);
    await upload.stop();
    return {
      hostname: `${published.serviceId}.onion`,
      tor,
      bootstrapSeconds,
      publishSeconds: (performance.now() - start) / 1000,
      close,
    };
  } catch (e) {
    await close();
    if (e instanceof UsageError && e.reason === 'tor-bootstrap-timeout' && tor !== null) {
      throw new UsageError('tor-bootstrap-timeout', `${e.message}\n${tor.logTail()}`);
    }
    throw e;
  }
}
