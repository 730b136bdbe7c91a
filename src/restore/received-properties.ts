import type { Argv } from '../host/quote.js';
import { isWithin } from '../zfs/names.js';

/** Where a restored dataset sits among the VM's delegated datasets. */
export type DelegatedRole = 'delegated' | 'below-delegated' | undefined;

export function delegatedRole(source: string, delegated: readonly string[]): DelegatedRole {
  if (delegated.includes(source)) return 'delegated';
  return delegated.some((d) => isWithin(source, d)) ? 'below-delegated' : undefined;
}

/**
 * `zfs receive` of one restored dataset. A delegated dataset belongs to the zone: zoned=on (the
 * zone framework sets it when the zone boots; smartos-live VM.js reprovision sets it itself, "set
 * zoned=on for zones/<uuid>/data") and never mounted in the global zone, so it and everything
 * below it is received unmounted, zoned=on set on its top.
 */
export function receiveArgv(into: string, options: { origin?: string; role?: DelegatedRole }): Argv {
  return [
    'zfs',
    'receive',
    ...(options.role ? ['-u'] : []),
    ...(options.role === 'delegated' ? ['-o', 'zoned=on'] : []),
    ...(options.origin ? ['-o', `origin=${options.origin}`] : []),
    into,
  ];
}

/**
 * Properties the streams do not carry and vmadm set on the datasets the restore replaced: each
 * zvol's refreservation, as the stored spec gives it (MiB, as `vmadm get` reports it).
 */
export function diskPropertyCommands(
  spec: { disks?: ReadonlyArray<Record<string, unknown>> },
  pairs: ReadonlyArray<{ source: string; into: string }>,
): Argv[] {
  return (spec.disks ?? []).flatMap((disk) => {
    const into = pairs.find((p) => p.source === disk.zfs_filesystem)?.into;
    const mib = disk.refreservation;
    if (!into || typeof mib !== 'number' || !Number.isFinite(mib) || mib < 0) return [];
    return [['zfs', 'set', `refreservation=${mib > 0 ? `${Math.round(mib)}M` : 'none'}`, into]];
  });
}
