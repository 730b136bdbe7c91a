import { humanBytes } from '../report/render.js';
import type { DatasetSpace as ListedSpace } from '../zfs/list.js';

/** The space properties of one dataset about to be snapshotted, as the SmartOS side's listing gives them. */
export interface DatasetSpace extends ListedSpace {
  name: string;
}

export interface Headroom {
  /** Bytes the snapshots must find free under the quotas above the datasets. */
  needed: number;
  /** Bytes free there, or undefined when no dataset tells (every one has a refquota). */
  free?: number;
  /** needed − free when positive, else 0. */
  shortfall: number;
}

/**
 * Whether one atomic `zfs snapshot` of these datasets fits. ZFS (dsl_dataset_snapshot_reserve_space)
 * charges each snapshot of a dataset with a refreservation min(unique bytes, refreservation) against
 * the space free to its directory, and adds these charges up within one snapshot transaction; the
 * space free to the directory is the dataset's `available` less the part of its own refreservation
 * it has not used yet (that part is the dataset's alone).
 */
export function snapshotHeadroom(datasets: readonly DatasetSpace[]): Headroom {
  const needed = datasets.reduce((sum, d) => sum + Math.min(d.usedbydataset, d.refreservation), 0);
  const frees = datasets
    .filter((d) => d.refquota === 0)
    .map((d) => d.available - Math.max(0, d.refreservation - d.usedbydataset));
  const free = frees.length > 0 ? Math.min(...frees) : undefined;
  return { needed, free, shortfall: free === undefined ? 0 : Math.max(0, needed - free) };
}

const MIB = 1024 * 1024;

/**
 * The refusal for a VM whose snapshots do not fit, with the change that makes them fit: for bhyve,
 * a flexible_disk_size that much larger (VM.js setQuotaBhyve turns it into the root's quota; without
 * it, the disks' sizes are what it counts), elsewhere free space.
 */
export function headroomError(
  uuid: string,
  brand: string | undefined,
  headroom: Headroom,
  datasets: readonly DatasetSpace[],
  flexibleDiskSize?: number,
): string {
  const short = `their snapshots need ${headroom.needed} bytes (${humanBytes(headroom.needed)}) free and ${headroom.free ?? 0} are: short by ${headroom.shortfall} bytes`;
  const base = `VM ${uuid}: not snapshotted: ${short}, so zfs snapshot would fail (out of space).`;
  if (brand === 'bhyve') {
    const disks = Math.ceil(datasets.reduce((sum, d) => sum + d.volsize, 0) / MIB);
    const at = (flexibleDiskSize ?? disks) + Math.ceil(headroom.shortfall / MIB);
    return `${base} A bhyve VM's quota leaves room for snapshots only through flexible_disk_size (MiB): run vmadm update ${uuid} flexible_disk_size=${at} (at least; more leaves room for what is written between backups), then back it up again.`;
  }
  return `${base} Free at least ${headroom.shortfall} bytes in the pool or under the quota holding ${datasets.map((d) => d.name).join(', ')} (zfs list -o space), then back it up again.`;
}
