import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { streamKey, streamMetadata, type StoredStream } from '../../src/s3/keys.js';
import type { S3Settings } from '../../src/s3/settings.js';
import { bucketTarget, storedInBucket } from '../../src/s3/status.js';
import type { VmCatalog } from '../../src/s3/catalog.js';
import { storedOnBackupHost } from '../../src/status/backup-host.js';
import { vmHealth, type LocalSide } from '../../src/status/collect.js';
import {
  datasetHealth,
  formatAge,
  parseDuration,
  vmBackupAge,
  type DatasetHealth,
  type StoredDataset,
} from '../../src/status/health.js';
import type { DatasetState, SnapshotInfo } from '../../src/zfs/list.js';
import { FakeObjectStore } from './fake-object-store.js';

const VM = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const DATASET = `zones/${VM}`;

/** A snapshot of the history: its guid is `g<name>` unless given, created at `at` seconds. */
interface Snap {
  name: string;
  at: number;
  guid?: string;
}
const info = (s: Snap): SnapshotInfo => ({
  name: s.name,
  guid: s.guid ?? `g${s.name}`,
  createtxg: s.at,
  creation: s.at,
  userrefs: 0,
});
const zfsState = (name: string, snaps: readonly Snap[], extra: Partial<DatasetState> = {}): DatasetState => ({
  name,
  type: 'filesystem',
  guid: 'g',
  snapshots: snaps.map(info),
  ...extra,
});

/** The streams a bucket holds for stored snapshots: the first full, each later one incremental from the one before. */
function streams(snaps: readonly Snap[], dataset = DATASET): StoredStream[] {
  return snaps.map((s, i) => {
    const parent = i > 0 ? info(snaps[i - 1]!) : undefined;
    return {
      key: streamKey('zc', VM, dataset, s.name),
      dataset,
      snapshot: s.name,
      guid: info(s).guid,
      createtxg: s.at,
      parent: parent && { dataset, snapshot: parent.name, guid: parent.guid },
      vm: VM,
      compression: 'none',
      encrypted: false,
    };
  });
}
const catalogOf = (stored: readonly StoredStream[]): VmCatalog => ({
  vm: VM,
  streams: new Map(stored.map((s) => [s.key, { ...s, size: 1 }])),
  sets: [],
  unknown: [],
});

/** One history, as both targets would hold it. */
interface History {
  local: Snap[];
  stored: Snap[];
  /** A receive (or upload) of this snapshot was interrupted. */
  interrupted?: string;
}
const NOW = 10_000;
const BUCKET_TARGET = streamKey('zc', VM, DATASET, '');

function onBackupHost(h: History): StoredDataset {
  const copy = h.stored.length || h.interrupted ? zfsState('backup/vm', h.stored) : undefined;
  if (copy && h.interrupted) copy.resumeToken = `1-token-for-${h.interrupted}`;
  return storedOnBackupHost(`backup/${VM}`, copy);
}
function inBucket(h: History): StoredDataset {
  const pending = h.interrupted ? [`${BUCKET_TARGET}${h.interrupted}`] : [];
  return storedInBucket(catalogOf(streams(h.stored)), DATASET, BUCKET_TARGET, pending);
}
/** What status says, without where the target keeps it. */
function answer(h: History, stored: StoredDataset): Omit<DatasetHealth, 'target' | 'problems'> {
  const { target: _target, problems: _problems, ...rest } = datasetHealth(DATASET, h.local.map(info), stored, NOW);
  return rest;
}

describe('one status core for both targets', () => {
  const d1 = { name: 'daily-1', at: 1000 };
  const d2 = { name: 'daily-2', at: 2000 };
  const d3 = { name: 'daily-3', at: 3000 };
  const h1 = { name: 'hourly-1', at: 2500 };
  const table: Array<{ name: string; history: History; chain: DatasetHealth['chain']; common?: string }> = [
    { name: 'everything stored', history: { local: [d1, d2], stored: [d1, d2] }, chain: 'ok', common: 'daily-2' },
    { name: 'nothing stored yet', history: { local: [d1, d2], stored: [] }, chain: 'missing' },
    {
      name: 'the newest snapshot not sent yet: the common one is older',
      history: { local: [d1, d2, d3], stored: [d1, d2] },
      chain: 'ok',
      common: 'daily-2',
    },
    {
      name: 'rotated away here: only the stored history goes further back',
      history: { local: [d2, d3], stored: [d1, d2, d3] },
      chain: 'ok',
      common: 'daily-3',
    },
    {
      name: 'same names, other guids (a VM recreated under its UUID) have nothing in common',
      history: {
        local: [d1, d2],
        stored: [
          { ...d1, guid: 'old1' },
          { ...d2, guid: 'old2' },
        ],
      },
      chain: 'no-common',
    },
    {
      name: 'an interrupted transfer is a pending resume',
      history: { local: [d1, d2, d3], stored: [d1, d2], interrupted: 'daily-3' },
      chain: 'ok',
      common: 'daily-2',
    },
    {
      name: 'an interrupted first transfer: nothing stored, resume pending',
      history: { local: [d1], stored: [], interrupted: 'daily-1' },
      chain: 'missing',
    },
    {
      name: 'every group is counted on each side',
      history: { local: [d1, d2, h1, d3], stored: [d1, d2, h1] },
      chain: 'ok',
      common: 'hourly-1',
    },
  ];

  for (const row of table) {
    it(`${row.name}: ${row.chain}, the same on the backup host and in the bucket`, () => {
      const host = answer(row.history, onBackupHost(row.history));
      const bucket = answer(row.history, inBucket(row.history));
      assert.deepEqual(bucket, host);
      assert.equal(host.chain, row.chain);
      assert.equal(host.newestCommon?.name, row.common);
      const common = row.history.local.find((s) => s.name === row.common);
      assert.equal(host.newestCommon?.ageSeconds, common ? NOW - common.at : undefined);
      assert.equal(host.resumePending, Boolean(row.history.interrupted));
      assert.equal(
        Object.values(host.remoteGroups).reduce((a, b) => a + b, 0),
        row.history.stored.length,
      );
    });
  }

  it('the VM is as old as its worst dataset, whichever target holds it', () => {
    const child = `${DATASET}/data`;
    const local: LocalSide = {
      datasets: [DATASET, child],
      local: new Map([
        [DATASET, zfsState(DATASET, [d1, d2])],
        [child, zfsState(child, [d1, d2])],
      ]),
    };
    // the child's newest snapshot never arrived, so the VM is as old as its daily-1
    const onHost = new Map([
      [DATASET, storedOnBackupHost('b/r', zfsState('b/r', [d1, d2]))],
      [child, storedOnBackupHost('b/r/data', zfsState('b/r/data', [d1]))],
    ]);
    const bucketCatalog = catalogOf([...streams([d1, d2]), ...streams([d1], child)]);
    const fromHost = vmHealth(local, { dataset: (d) => onHost.get(d)! }, NOW);
    const fromBucket = vmHealth(local, { dataset: (d) => storedInBucket(bucketCatalog, d, 'k/', []) }, NOW);
    assert.equal(vmBackupAge(fromHost), NOW - d1.at);
    assert.equal(vmBackupAge(fromBucket), vmBackupAge(fromHost));
    assert.deepEqual(
      fromBucket.map((d) => [d.dataset, d.chain, d.newestCommon?.name]),
      fromHost.map((d) => [d.dataset, d.chain, d.newestCommon?.name]),
    );
  });
});

describe('where the targets differ by design', () => {
  const d1 = { name: 'daily-1', at: 1000 };
  const d2 = { name: 'daily-2', at: 2000 };
  const x3 = { name: 'manual-3', at: 3000 };

  it('a snapshot after the common one stops the next receive on the backup host, not an upload to the bucket', () => {
    const history = { local: [d1, d2], stored: [d1, d2, x3] };
    assert.equal(answer(history, onBackupHost(history)).chain, 'diverged');
    assert.equal(answer(history, inBucket(history)).chain, 'ok');
  });

  it('a stream whose parent is gone is broken, and its snapshot is no common one', () => {
    const catalog = catalogOf(streams([d1, d2]).slice(1));
    const stored = storedInBucket(catalog, DATASET, BUCKET_TARGET, []);
    const h = datasetHealth(DATASET, [d1, d2].map(info), stored, NOW);
    assert.equal(h.chain, 'broken');
    assert.equal(h.newestCommon, undefined);
    assert.match(h.problems?.[0] ?? '', /daily-2: parent .*@daily-1 .* is missing/);
  });

  it('status --verify downloads every stream: one flipped byte makes the chain corrupt', async () => {
    const store = new FakeObjectStore();
    for (const s of streams([d1, d2])) {
      const body = Buffer.from(`stream ${s.snapshot}`);
      const sha256 = createHash('sha256').update(body).digest('hex');
      store.objects.set(s.key, { body, metadata: streamMetadata({ ...s, bytes: body.length, sha256 }) });
    }
    const s3 = { prefix: 'zc', stateDirectory: '/nonexistent/zonecopy-state' } as S3Settings;
    const local: LocalSide = { datasets: [DATASET], local: new Map([[DATASET, zfsState(DATASET, [d1, d2])]]) };
    const health = async (verify: boolean) =>
      datasetHealth(
        DATASET,
        [d1, d2].map(info),
        (await bucketTarget(store, s3, verify).observe(VM, local)).dataset(DATASET),
        NOW,
      );

    assert.deepEqual([(await health(true)).chain, (await health(true)).problems], ['ok', []]);
    const key = streamKey('zc', VM, DATASET, 'daily-1');
    store.objects.get(key)!.body[0]! ^= 0xff;
    assert.equal((await health(false)).chain, 'ok', 'names and guids alone still look fine');
    const verified = await health(true);
    assert.equal(verified.chain, 'corrupt');
    assert.equal(verified.newestCommon?.name, 'daily-2');
    assert.ok(
      verified.problems?.some((p) => p.startsWith(key) && /do not match/.test(p)),
      String(verified.problems),
    );
  });
});

describe('status health', () => {
  it('ages a VM by its worst dataset', () => {
    const snap = (name: string, guid: string, at: number) => info({ name, guid, at });
    const host = (snaps: SnapshotInfo[]) =>
      storedOnBackupHost('b/a', { name: 'b/a', type: 'filesystem', guid: 'g', snapshots: snaps });
    const fresh = datasetHealth('z/a', [snap('d-1', '1', 90)], host([snap('d-1', '1', 90)]), 100);
    const old = datasetHealth('z/b', [snap('d-1', '2', 10)], host([snap('d-1', '2', 10)]), 100);
    assert.equal(vmBackupAge([fresh, old]), 90);
    assert.equal(vmBackupAge([fresh, datasetHealth('z/c', [], storedOnBackupHost('b/c', undefined), 100)]), Infinity);
    assert.equal(vmBackupAge([]), Infinity);
  });

  it('parses and formats durations', () => {
    assert.equal(parseDuration('26h'), 93600);
    assert.equal(parseDuration('90m'), 5400);
    assert.throws(() => parseDuration('soon'));
    assert.equal(formatAge(Infinity), 'never');
    assert.equal(formatAge(5400), '90m');
  });
});
