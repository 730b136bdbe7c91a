import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { OpensshTarget } from './openssh.js';

/**
 * How one `zfs send` stream reaches one `zfs receive` on the backup host. Every strategy sits
 * behind this interface; adding one touches nothing else.
 */
export interface TransferStrategy {
  readonly name: StrategyName;
  /** Streams `send` (run locally) into `receive` (run on the backup host). Throws TransferError. */
  transfer(send: Argv, receive: Argv, hint?: TransferHint): Promise<TransferResult>;
  /**
   * Several small incremental streams one after the other through one local shell and one
   * `zfs receive` session on the backup host (strategies without it send each on its own).
   */
  transferSeries?(items: readonly SeriesItem[]): Promise<SeriesResult>;
  /** The pipeline as an operator would type it, for --dry-run. */
  describe(send: Argv, receive: Argv): string;
  /** Ends what the strategy keeps open between transfers (a shared OpenSSH connection). */
  close(): Promise<void>;
}

export type StrategyName = 'ssh' | 'ssh_gzip' | 'mbuffer' | 'mbuffer_gzip';

/** What is known of a stream before it is sent. */
export interface TransferHint {
  /** Bytes the snapshot added (its `written`), for an incremental from the snapshot just before it. */
  estimatedBytes?: number;
}

export interface TransferResult {
  /** Bytes that crossed to the backup host (compressed bytes for the gzip strategies). */
  bytes: number;
  seconds: number;
}

/** One stream of a series: an incremental `zfs send` and the `zfs receive` (without -v) it goes into. */
export interface SeriesItem {
  send: Argv;
  receive: Argv;
}

export interface SeriesResult {
  /** One per stream received, in order: every item after the last of these was not received. */
  received: TransferResult[];
  /** Why the series stopped early, naming the stream it stopped at. */
  error?: string;
}

export interface StrategyOptions {
  local: Host;
  remote: Host;
  /** The backup host's address as the SmartOS host reaches it (mbuffer connects there). */
  remoteAddress: string;
  compress: Argv;
  decompress: Argv;
  mbufferLocal: string;
  mbufferRemote: string;
  mbufferLocalSize: string;
  mbufferRemoteSize: string;
  mbufferPorts: readonly [number, number];
  mbufferTimeoutSeconds: number;
  /** ssh strategies: the bulk stream over an OpenSSH client child (`openssh`) or a channel of the ssh2 connection. */
  bulk: 'openssh' | 'ssh2';
  openssh: OpensshTarget;
}

export class TransferError extends Error {
  override name = 'TransferError';
}
