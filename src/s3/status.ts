import type { StatusTarget } from '../status/collect.js';
import type { StoredDataset } from '../status/health.js';
import { chainOf, readCatalog, streamsOf, type VmCatalog } from './catalog.js';
import { streamKey, vmPrefix, type StoredStream } from './keys.js';
import type { S3Settings } from './settings.js';
import type { ObjectStore } from './store.js';
import { pendingJournals } from './upload.js';
import { verifyStream } from './verify.js';

/**
 * The bucket as status reads it: the VM's catalog, the uploads this host left unfinished, and
 * with `verify` every stream downloaded and checked against its recorded sha256.
 */
export function bucketTarget(store: ObjectStore, s3: S3Settings, verify: boolean): StatusTarget {
  return {
    async observe(uuid, local) {
      const catalog = await readCatalog(store, s3.prefix, uuid);
      const pending = pendingJournals(s3.stateDirectory, vmPrefix(s3.prefix, uuid)).map((j) => j.key);
      const stored = new Map<string, StoredDataset>();
      for (const dataset of local.datasets) {
        const corrupt = verify ? await verifyAll(store, streamsOf(catalog, dataset)) : undefined;
        const target = streamKey(s3.prefix, uuid, dataset, '');
        stored.set(dataset, storedInBucket(catalog, dataset, target, pending, corrupt));
      }
      return {
        dataset: (source) =>
          stored.get(source) ?? storedInBucket(catalog, source, streamKey(s3.prefix, uuid, source, ''), pending),
        consistency: async (snapshot) => catalog.sets.find((s) => s.snapshot === snapshot)?.consistency,
      };
    },
  };
}

/** Each stream whose bytes fail their record, with why. */
async function verifyAll(store: ObjectStore, streams: readonly StoredStream[]): Promise<Map<string, string>> {
  const bad = new Map<string, string>();
  for (const s of streams) {
    const problem = await verifyStream(store, s);
    if (problem) bad.set(s.key, problem);
  }
  return bad;
}

/**
 * One dataset's streams in the bucket (pure): a stream whose chain lacks a parent cannot be
 * restored, and an upload this host left unfinished directly under `target` is a pending resume.
 */
export function storedInBucket(
  catalog: VmCatalog,
  dataset: string,
  target: string,
  pendingKeys: readonly string[],
  corrupt?: ReadonlyMap<string, string>,
): StoredDataset {
  const problems: Array<{ kind: 'broken' | 'corrupt'; text: string }> = [];
  const snapshots = streamsOf(catalog, dataset).map((s) => {
    const { missing } = chainOf(catalog, s);
    if (missing) problems.push({ kind: 'broken', text: `${s.key}: parent ${missing} is missing` });
    const bad = corrupt?.get(s.key);
    if (bad) problems.push({ kind: 'corrupt', text: bad });
    return { name: s.snapshot, guid: s.guid, restorable: !missing };
  });
  return {
    target,
    snapshots,
    resumePending: pendingKeys.some((key) => key.startsWith(target) && !key.slice(target.length).includes('/')),
    newerBlocksIncremental: false,
    problems,
  };
}
