import type { Host } from '../host/host.js';
import { observeVm } from '../backup/observe.js';
import { targetDatasetName } from '../zfs/names.js';
import { consistencyText, readStoredConsistency } from './consistency.js';
import { datasetHealth, vmBackupAge, type DatasetHealth } from './health.js';

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

/** All VMs on this host, the SmartOS way. */
export async function allVmUuids(local: Host): Promise<string[]> {
  const out = await local.run(['vmadm', 'list', '-p', '-o', 'uuid'], { mutates: false });
  return out.stdout.split('\n').filter(Boolean);
}

export async function collectStatus(
  uuids: readonly string[],
  hosts: { local: Host; remote: Host },
  basePath: string,
  now: number,
  specDirectory?: string,
): Promise<VmStatus[]> {
  const result: VmStatus[] = [];
  for (const uuid of uuids) {
    try {
      const o = await observeVm(uuid, hosts, basePath);
      const datasets = o.datasets.map((d) => {
        const target = targetDatasetName(basePath, d);
        return datasetHealth(d, target, o.local.get(d), o.remote.get(target), now);
      });
      const newest = datasets[0]?.newestCommon?.name;
      const record =
        newest && specDirectory
          ? await readStoredConsistency(hosts.remote, `${specDirectory}/${uuid}`, newest)
          : undefined;
      const newestSet = newest ? { newestSet: { snapshot: newest, consistency: consistencyText(record) } } : {};
      result.push({
        uuid,
        alias: o.spec.alias,
        brand: o.spec.brand,
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
