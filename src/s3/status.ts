import { consistencyText } from '../status/consistency.js';
import { observeLocal } from '../backup/observe.js';
import type { Host } from '../host/host.js';
import type { VmStatus } from '../status/collect.js';
import { countGroups, vmBackupAge, type DatasetHealth } from '../status/health.js';
import { chainOf, readCatalog, streamsOf } from './catalog.js';
import { vmPrefix } from './keys.js';
import type { S3Settings } from './settings.js';
import type { ObjectStore } from './store.js';
import { pendingJournals } from './upload.js';
import { verifyStream } from './verify.js';

/**
 * Per VM and dataset: local snapshots against the streams in the bucket, the newest snapshot both
 * have (by guid, with an unbroken chain), and chain health; `verify` also downloads every stream
 * and checks its sha256.
 */
export async function collectS3Status(
  uuids: readonly string[],
  local: Host,
  store: ObjectStore,
  s3: S3Settings,
  now: number,
  verify: boolean,
): Promise<VmStatus[]> {
  const result: VmStatus[] = [];
  for (const uuid of uuids) {
    try {
      const observed = await observeLocal(uuid, local);
      const catalog = await readCatalog(store, s3.prefix, uuid);
      const pending = pendingJournals(s3.stateDirectory, vmPrefix(s3.prefix, uuid)).map((j) => j.key);
      const datasets: DatasetHealth[] = [];
      for (const dataset of observed.datasets) {
        const localSnaps = observed.local.get(dataset)?.snapshots ?? [];
        const stored = streamsOf(catalog, dataset);
        const problems: string[] = [];
        const intact = new Map<string, (typeof stored)[number]>();
        for (const s of stored) {
          const { missing } = chainOf(catalog, s);
          if (missing) problems.push(`${s.key}: parent ${missing} is missing`);
          else intact.set(s.guid, s);
          const bad = verify ? await verifyStream(store, s) : undefined;
          if (bad) problems.push(bad);
        }
        const common = [...localSnaps].reverse().find((s) => intact.has(s.guid));
        const corrupt = problems.some((p) => p.includes('do not match') || p.includes('no sha256'));
        const target = `${vmPrefix(s3.prefix, uuid)}${dataset.slice(dataset.indexOf('/') + 1)}/`;
        datasets.push({
          dataset,
          target,
          localGroups: countGroups(localSnaps),
          remoteGroups: countGroups(stored.map((s) => ({ name: s.snapshot }))),
          newestCommon: common
            ? {
                name: common.name,
                guid: common.guid,
                creation: common.creation,
                ageSeconds: Math.max(0, now - common.creation),
              }
            : undefined,
          resumePending: pending.some((key) => key.startsWith(target) && !key.slice(target.length).includes('/')),
          chain: corrupt
            ? 'corrupt'
            : problems.length
              ? 'broken'
              : stored.length === 0
                ? 'missing'
                : common
                  ? 'ok'
                  : 'no-common',
          problems,
        });
      }
      const newest = datasets[0]?.newestCommon?.name;
      const set = newest ? catalog.sets.find((s) => s.snapshot === newest) : undefined;
      const newestSet = newest
        ? { newestSet: { snapshot: newest, consistency: consistencyText(set?.consistency) } }
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
