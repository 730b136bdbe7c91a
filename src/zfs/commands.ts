import type { Argv } from '../host/quote.js';

/** argv builders for the zfs commands zonecopy runs; nothing here touches a host. */

export function snapshotArgv(snapshots: readonly string[]): Argv {
  return ['zfs', 'snapshot', ...snapshots];
}

export interface SendSpec {
  /** Full name of the incremental source (a snapshot of the same dataset, or a clone's origin). */
  from?: string;
  /** `-I` (with intermediate snapshots) instead of `-i`. */
  intermediates?: boolean;
  /** Full name of the snapshot sent. */
  to: string;
  /** `-w`: an encrypted dataset's blocks as they are on disk (the key never leaves the host). */
  raw?: boolean;
}

export function sendArgv(spec: SendSpec): Argv {
  const base = ['zfs', 'send', ...(spec.raw ? ['-w'] : [])];
  if (!spec.from) return [...base, spec.to];
  return [...base, spec.intermediates ? '-I' : '-i', spec.from, spec.to];
}

export interface ReceiveOptions {
  /** Makes the received dataset a clone of this target snapshot. */
  origin?: string;
}

/**
 * Never -F: receiving must not roll back or mirror-delete anything on the backup host. Always -s,
 * so an interrupted stream leaves a resume token instead of nothing; -u: never mount there.
 */
export function receiveArgv(target: string, options: ReceiveOptions = {}): Argv {
  const argv = ['zfs', 'receive', '-s', '-u'];
  if (options.origin) argv.push('-o', `origin=${options.origin}`);
  return [...argv, target];
}

/** One call destroys several snapshots of one dataset (`ds@a,b,c`). */
export function destroySnapshotsArgv(dataset: string, snapshots: readonly string[]): Argv {
  return ['zfs', 'destroy', `${dataset}@${snapshots.join(',')}`];
}

/** A placeholder parent on the backup host: never mounted. */
export function createParentArgv(dataset: string): Argv {
  return ['zfs', 'create', '-p', '-o', 'canmount=off', dataset];
}

/** Continues an interrupted stream; `check` only validates the token (dry run). */
export function resumeSendArgv(token: string, check = false): Argv {
  return ['zfs', 'send', ...(check ? ['-nv'] : []), '-t', token];
}

export function abortReceiveArgv(target: string): Argv {
  return ['zfs', 'receive', '-A', target];
}

/** `zfs send -nP` prints `size\t<bytes>` last: the stream's estimated size. */
export function parseSendEstimate(output: string): number | undefined {
  const match = /^size\s+(\d+)\s*$/m.exec(output);
  return match ? Number(match[1]) : undefined;
}
