import type { ConsistencyRecord } from '../backup/hook-run.js';
import { observeLocal, type VmObservation } from '../backup/observe.js';
import type { Host } from '../host/host.js';
import { consistencyText } from './consistency.js';
import { datasetHealth, vmBackupAge, type DatasetHealth, type StoredDataset } from './health.js';

export interface VmStatus {
  uuid: string;
  alias?: string;
  brand?: string;
  /** Age in seconds of the VM's oldest newest-common snapshot; Infinity when a dataset has none. */
  ageSeconds: number;
  datasets: DatasetHealth[];
  /** The newest backup set (the root dataset's newest common snapshot) and how consistent it is. */
  newestSet?: { snapshot: string; consistency: string };
  error?: string;
}

/** The SmartOS side of one VM, as status reads it. */
export type LocalSide = Pick<VmObservation, 'datasets' | 'local'>;

/** What a target holds of one VM: each dataset's stored side, and the consistency record of a backup set. */
export interface TargetObservation {
  dataset(source: string): StoredDataset;
  consistency(snapshot: string): Promise<ConsistencyRecord | undefined>;
}

/** A target as status reads it (the backup host over SSH, a bucket): one observation per VM. */
export interface StatusTarget {
  observe(uuid: string, local: LocalSide): Promise<TargetObservation>;
}

/** All VMs on this host, the SmartOS way. */
export async function allVmUuids(local: Host): Promise<string[]> {
  const out = await local.run(['vmadm', 'list', '-p', '-o', 'uuid'], { mutates: false });
  return out.stdout.split('\n').filter(Boolean);
}

/** Every dataset's health against one target's observation (pure). */
export function vmHealth(local: LocalSide, stored: Pick<TargetObservation, 'dataset'>, now: number): DatasetHealth[] {
  return local.datasets.map((d) => datasetHealth(d, local.local.get(d)?.snapshots ?? [], stored.dataset(d), now));
}

/**
 * Per VM and dataset: local snapshots against what the target holds, the newest snapshot both
 * have (by guid), chain health, and how consistent the newest backup set is. A VM that cannot be
 * read is reported with its error; the others are still shown.
 */
export async function collectStatus(
  uuids: readonly string[],
  local: Host,
  target: StatusTarget,
  now: number,
): Promise<VmStatus[]> {
  const result: VmStatus[] = [];
  for (const uuid of uuids) {
    try {
      const observed = await observeLocal(uuid, local);
      const stored = await target.observe(uuid, observed);
      const datasets = vmHealth(observed, stored, now);
      const newest = datasets[0]?.newestCommon?.name;
      const newestSet = newest
        ? { newestSet: { snapshot: newest, consistency: consistencyText(await stored.consistency(newest)) } }
        : {};
      result.push({
        uuid,
        alias: observed.spec.alias,
        brand: observed.spec.brand,
        ageSeconds: vmBackupAge(datasets),
        datasets,
        ...newestSet,
      });
    } catch (error) {
      result.push({ uuid, ageSeconds: Infinity, datasets: [], error: (error as Error).message });
    }
  }
  return result;
}
