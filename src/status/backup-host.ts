import { observeRemote } from '../backup/observe.js';
import type { Host } from '../host/host.js';
import type { DatasetState } from '../zfs/list.js';
import { targetDatasetName } from '../zfs/names.js';
import type { StatusTarget } from './collect.js';
import { readStoredConsistency } from './consistency.js';
import type { StoredDataset } from './health.js';

/** The backup host as status reads it: one `zfs list` of the VM's copies, and the consistency records beside its specs. */
export function backupHostTarget(remote: Host, basePath: string, specDirectory?: string): StatusTarget {
  return {
    async observe(uuid, local) {
      const listing = await observeRemote(local, remote, basePath);
      return {
        dataset: (source) => {
          const target = targetDatasetName(basePath, source);
          return storedOnBackupHost(target, listing.get(target));
        },
        consistency: async (snapshot) =>
          specDirectory ? readStoredConsistency(remote, `${specDirectory}/${uuid}`, snapshot) : undefined,
      };
    },
  };
}

/** A copy on the backup host: every snapshot ZFS lists is whole (it checks its own blocks). */
export function storedOnBackupHost(target: string, copy: DatasetState | undefined): StoredDataset {
  return {
    target,
    snapshots: (copy?.snapshots ?? []).map((s) => ({ name: s.name, guid: s.guid, restorable: true })),
    resumePending: Boolean(copy?.resumeToken),
    newerBlocksIncremental: true,
  };
}
