import type { ConsistencyRecord } from '../backup/hook-run.js';
import type { Host } from '../host/host.js';
import { discoverDatasets } from '../smartos/discovery.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { consistencyText, readStoredConsistency } from '../status/consistency.js';
import { listDatasets } from '../zfs/list.js';
import { targetDatasetName } from '../zfs/names.js';
import { completeBackupSets } from './backup-sets.js';
import { RestoreError } from './restore-vm.js';

/** One backup set `restore --list` shows: what `--snapshot` would restore, and how consistent it is. */
export interface ListedSet {
  snapshot: string;
  consistency: string;
  record?: ConsistencyRecord;
}

/** The VM's complete backup sets on the backup host, newest first; the backup host is only read. */
export async function listBackupSets(
  uuid: string,
  options: { basePath: string; specDirectory: string },
  remote: Host,
): Promise<ListedSet[]> {
  const directory = `${options.specDirectory}/${uuid}`;
  const listing = await remote.run(['ls', '-1', directory], { mutates: false, allowExitCodes: [1, 2] });
  if (listing.exitCode !== 0)
    throw new RestoreError(`no backups of VM ${uuid} on ${remote.label}: ${directory} does not exist`);
  const specNames = listing.stdout
    .split('\n')
    .filter((f) => f.endsWith('.json') && !f.endsWith('.images.json'))
    .map((f) => f.slice(0, -'.json'.length));
  if (specNames.length === 0) return [];
  const newest = JSON.parse(
    (await remote.run(['cat', `${directory}/${specNames[specNames.length - 1]}.json`], { mutates: false })).stdout,
  ) as VmSpec;
  const targets = discoverDatasets(newest).datasets.map((d) => targetDatasetName(options.basePath, d));
  const sets = completeBackupSets(specNames, targets, await listDatasets(remote, targets));
  const listed: ListedSet[] = [];
  // one after the other: each is a channel of the one SSH connection (sshd's MaxSessions)
  for (const snapshot of sets) {
    const record = await readStoredConsistency(remote, directory, snapshot);
    listed.push({ snapshot, consistency: consistencyText(record), ...(record ? { record } : {}) });
  }
  return listed;
}

export function renderSetList(uuid: string, sets: readonly ListedSet[]): string {
  if (sets.length === 0) return `VM ${uuid}: no complete backup set`;
  return [
    `VM ${uuid}: ${sets.length} complete backup set(s), newest first (restore one with --snapshot NAME)`,
    ...sets.map((s) => `  ${s.snapshot}  ${s.consistency}`),
  ].join('\n');
}
