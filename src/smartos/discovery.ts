import { depth, isValidDatasetName } from '../zfs/names.js';
import type { VmSpec } from './vmadm.js';

export interface Discovery {
  /** The VM's datasets to back up, parents before children. */
  datasets: string[];
  /** Named in internal_metadata.smartcopy_exclude and found among the VM's datasets. */
  excluded: string[];
  /** Things the operator should know (an exclusion that matched nothing). */
  warnings: string[];
}

const ZVOL_PATH = /^\/dev\/zvol\/r?dsk\/(.+)$/;

/**
 * The datasets of a VM, from its vmadm object only: the zone root, delegated datasets, and disk
 * volumes (KVM siblings `-diskN`, bhyve children `/diskN`). Never by UUID substring, so received
 * copies, archives and the cores dataset are never picked up.
 */
export function discoverDatasets(spec: VmSpec): Discovery {
  const found = [spec.zfs_filesystem, ...(spec.datasets ?? [])];
  for (const disk of spec.disks ?? []) {
    const name = disk.zfs_filesystem ?? disk.path?.match(ZVOL_PATH)?.[1];
    if (name) found.push(name);
  }
  for (const name of found) {
    if (!isValidDatasetName(name))
      throw new Error(`VM ${spec.uuid}: vmadm lists an invalid dataset name ${JSON.stringify(name)}`);
  }
  const exclude = parseExclusions(spec.internal_metadata?.smartcopy_exclude);
  const unique = [...new Set(found)];
  const datasets = unique.filter((name) => !exclude.has(name));
  const excluded = unique.filter((name) => exclude.has(name));
  const warnings = [...exclude]
    .filter((name) => !unique.includes(name))
    .map(
      (name) =>
        `internal_metadata.smartcopy_exclude names ${JSON.stringify(name)}, which is not a dataset of VM ${spec.uuid}; ignored`,
    );
  datasets.sort((a, b) => depth(a) - depth(b));
  return { datasets, excluded, warnings };
}

function parseExclusions(value: unknown): Set<string> {
  if (typeof value !== 'string') return new Set();
  return new Set(
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}
