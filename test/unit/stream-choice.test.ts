import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBackup } from '../../src/plan/backup-plan.js';
import type { TransferStep } from '../../src/plan/steps.js';
import { streamKey, type StoredStream } from '../../src/s3/keys.js';
import { planS3Backup, type UploadStep } from '../../src/s3/plan.js';
import type { DatasetState } from '../../src/zfs/list.js';

const VM = 'zones/vm';
const IMAGE = 'zones/img';
const IMAGE_TARGET = 'backup/zones/img';

function ds(name: string, snaps: Array<[string, string]>, origin?: string): DatasetState {
  return {
    name,
    type: 'volume',
    guid: `g-${name}`,
    origin,
    snapshots: snaps.map(([n, guid], i) => ({ name: n, guid, createtxg: i + 1, creation: i + 1, userrefs: 0 })),
  };
}

/** What either target makes of one clone scenario, in the same words. */
interface Outcome {
  /** The image's full streams planned (its source snapshot). */
  images: string[];
  /** Each clone's stream: from its origin, or in full. */
  clones: Array<'from origin' | 'full'>;
  warnings: string[];
}

function onBackupHost(datasets: string[], local: DatasetState[], stored: Array<[string, string]>) {
  const remote = [ds('backup/zones', []), ...(stored.length > 0 ? [ds(IMAGE_TARGET, stored)] : [])];
  const plan = planBackup({
    datasets,
    snapshot: 'daily-new',
    group: 'daily',
    basePath: 'backup/zones',
    local: new Map(local.map((d) => [d.name, d])),
    remote: new Map(remote.map((d) => [d.name, d])),
  });
  const transfers = plan.steps.filter((s): s is TransferStep => s.kind === 'transfer');
  const outcome: Outcome = {
    images: transfers.filter((t) => t.carriesImage).map((t) => t.sends[0]!.to),
    clones: transfers.filter((t) => !t.carriesImage).map((t) => (t.cloneOrigin ? 'from origin' : 'full')),
    warnings: plan.warnings,
  };
  return { outcome, cloneOrigins: transfers.filter((t) => !t.carriesImage).map((t) => t.cloneOrigin) };
}

function inBucket(datasets: string[], local: DatasetState[], stored: Array<[string, string]>) {
  const streams = stored.map(([snapshot, guid], i): StoredStream => ({
    key: streamKey('p', 'vm', IMAGE, snapshot),
    dataset: IMAGE,
    snapshot,
    guid,
    createtxg: i + 1,
    vm: 'vm',
    compression: 'zstd',
    encrypted: false,
  }));
  const plan = planS3Backup({
    vm: 'vm',
    prefix: 'p',
    datasets,
    local: new Map(local.map((d) => [d.name, d])),
    catalog: { vm: 'vm', streams: new Map(streams.map((s) => [s.key, { ...s, size: 1 }])), sets: [], unknown: [] },
    pending: [],
    snapshot: 'daily-new',
    group: 'daily',
    compression: 'zstd',
    encrypted: false,
  });
  const uploads = plan.steps.filter((s): s is UploadStep => s.kind === 'upload');
  const outcome: Outcome = {
    images: uploads.filter((u) => u.carriesImage).map((u) => u.send.to),
    clones: uploads.filter((u) => !u.carriesImage).map((u) => (u.send.from ? 'from origin' : 'full')),
    warnings: plan.warnings,
  };
  return { outcome, parents: uploads.filter((u) => !u.carriesImage).map((u) => u.stream.parent?.guid) };
}

describe("a clone's origin: one rule for the backup host and the bucket", () => {
  const image = ds(IMAGE, [
    ['final', 'img-guid'],
    ['vm2', 'vm2-guid'],
  ]);
  const disks = [`${VM}-disk0`, `${VM}-disk1`];
  const cases: Array<{
    name: string;
    origin: string;
    local: DatasetState[];
    stored: Array<[string, string]>;
    expected: Outcome;
  }> = [
    {
      name: 'an origin the target holds under another name (same guid) is used, not sent again',
      origin: `${IMAGE}@final`,
      local: [image],
      stored: [['renamed', 'img-guid']],
      expected: { images: [], clones: ['from origin', 'from origin'], warnings: [] },
    },
    {
      name: 'an origin missing on the target is sent once, before the first clone, and both clones build on it',
      origin: `${IMAGE}@final`,
      local: [image],
      stored: [],
      expected: { images: [`${IMAGE}@final`], clones: ['from origin', 'from origin'], warnings: [] },
    },
    {
      name: 'an origin the source does not list sends each clone in full, and says so',
      origin: `${IMAGE}@gone`,
      local: [image],
      stored: [['final', 'img-guid']],
      expected: {
        images: [],
        clones: ['full', 'full'],
        warnings: disks.map((d) => `${d}: origin ${IMAGE}@gone is not visible locally; sending ${d} in full`),
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const local = [...c.local, ...disks.map((d) => ds(d, [], c.origin))];
      const backupHost = onBackupHost(disks, local, c.stored);
      const bucket = inBucket(disks, local, c.stored);
      assert.deepEqual(backupHost.outcome, c.expected, 'backup host');
      assert.deepEqual(bucket.outcome, c.expected, 'bucket');
      const originGuid = c.local[0]!.snapshots.find((s) => `${IMAGE}@${s.name}` === c.origin)?.guid;
      const storedName = c.stored.find(([, guid]) => guid === originGuid)?.[0] ?? c.origin.split('@')[1];
      // the backup host receives the clone from its copy of the origin, under the name it has there
      assert.deepEqual(
        backupHost.cloneOrigins,
        c.expected.clones.map((how) => (how === 'full' ? undefined : `${IMAGE_TARGET}@${storedName}`)),
      );
      assert.deepEqual(
        bucket.parents,
        c.expected.clones.map((how) => (how === 'full' ? undefined : originGuid)),
      );
    });
  }
});
