/** The pre-snapshot space check: ZFS's accounting of snapshots of datasets with a refreservation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headroomError, snapshotHeadroom, type DatasetSpace } from '../../src/backup/headroom.js';
import { parseList, type DatasetState } from '../../src/zfs/list.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const UUID = '0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6';

/**
 * A bhyve VM as VM.js setQuotaBhyve leaves it: root refquota 1 GiB, refreservation 1 GiB − 1 MiB,
 * quota = reservation = refquota + Σ zvol refreservation; `free` is what is left under that quota.
 */
function bhyve(
  free: number,
  disks: Array<{ refreservation: number; unique: number; volsize: number }>,
  rootUnique = 40_000,
): DatasetSpace[] {
  const root: DatasetSpace = {
    name: `zones/${UUID}`,
    refreservation: GIB - MIB,
    usedbydataset: rootUnique,
    available: Math.min(free + GIB - MIB - rootUnique, GIB - rootUnique),
    refquota: GIB,
    volsize: 0,
  };
  return [
    root,
    ...disks.map((d, i) => ({
      name: `zones/${UUID}/disk${i}`,
      refreservation: d.refreservation,
      usedbydataset: d.unique,
      available: free + Math.max(0, d.refreservation - d.unique),
      refquota: 0,
      volsize: d.volsize,
    })),
  ];
}

describe('snapshotHeadroom', () => {
  const cases: Array<[string, DatasetSpace[], { needed: number; free?: number; shortfall: number }]> = [
    [
      'bhyve without flexible_disk_size: 1 MiB left, 3 MiB written to a disk: short (the defect)',
      bhyve(MIB - 40_000, [
        { refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB },
        { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB },
      ]),
      { needed: 40_000 + 3 * MIB, free: MIB - 40_000, shortfall: 40_000 + 3 * MIB - (MIB - 40_000) },
    ],
    [
      'bhyve with 64 MiB of flexible headroom: fits',
      bhyve(64 * MIB, [
        { refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB },
        { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB },
      ]),
      { needed: 40_000 + 3 * MIB, free: 64 * MIB, shortfall: 0 },
    ],
    [
      'a fresh clone (nothing unique) and a small root fit in the 1 MiB VM.js leaves',
      bhyve(MIB - 40_000, [{ refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB }]),
      { needed: 40_000, free: MIB - 40_000, shortfall: 0 },
    ],
    [
      'each disk alone fits, both in one atomic snapshot do not: the charges add up',
      bhyve(
        5 * MIB,
        [
          { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB },
          { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB },
        ],
        0,
      ),
      { needed: 6 * MIB, free: 5 * MIB, shortfall: MIB },
    ],
    [
      'a disk written beyond its refreservation is charged only its refreservation',
      bhyve(10 * MIB, [{ refreservation: 8 * MIB, unique: 9 * MIB, volsize: 8 * MIB }], 0),
      { needed: 8 * MIB, free: 10 * MIB, shortfall: 0 },
    ],
    [
      'sparse volumes and OS zones (no refreservation) need nothing',
      [
        { name: 'zones/vm', refreservation: 0, usedbydataset: 500 * MIB, available: 0, refquota: 0, volsize: 0 },
        { name: 'zones/vm-disk0', refreservation: 0, usedbydataset: GIB, available: 0, refquota: 0, volsize: GIB },
      ],
      { needed: 0, free: 0, shortfall: 0 },
    ],
    [
      'only datasets with a refquota: no verdict (their available is capped by it)',
      [
        {
          name: 'zones/vm',
          refreservation: GIB - MIB,
          usedbydataset: 2 * MIB,
          available: GIB - 2 * MIB,
          refquota: GIB,
          volsize: 0,
        },
      ],
      { needed: 2 * MIB, free: undefined, shortfall: 0 },
    ],
  ];
  for (const [name, datasets, expected] of cases) {
    it(name, () => assert.deepEqual(snapshotHeadroom(datasets), expected));
  }
});

describe('headroomError', () => {
  const disks = [
    { refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB },
    { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB },
  ];
  const datasets = bhyve(MIB - 40_000, disks);
  const headroom = snapshotHeadroom(datasets);

  it('bhyve: names the shortfall in bytes and the flexible_disk_size that covers it (disks 96 MiB + the shortfall rounded up)', () => {
    const message = headroomError(UUID, 'bhyve', headroom, datasets);
    assert.match(message, new RegExp(`short by ${headroom.shortfall} bytes`));
    assert.match(
      message,
      new RegExp(`vmadm update ${UUID} flexible_disk_size=${96 + Math.ceil(headroom.shortfall / MIB)}\\b`),
    );
  });

  it('bhyve with flexible_disk_size already set: counts from it', () => {
    assert.match(
      headroomError(UUID, 'bhyve', headroom, datasets, 200),
      new RegExp(`flexible_disk_size=${200 + Math.ceil(headroom.shortfall / MIB)}\\b`),
    );
  });

  it('other brands: the bytes to free, no vmadm property that does not apply', () => {
    const message = headroomError(UUID, 'kvm', headroom, datasets);
    assert.match(message, new RegExp(`Free at least ${headroom.shortfall} bytes`));
    assert.doesNotMatch(message, /flexible_disk_size/);
  });
});

it('the SmartOS side\'s listing carries the space columns, "-" (a filesystem\'s volsize) as 0', () => {
  const line = (name: string, type: string, space: string) =>
    `${name}\t${type}\t1\t10\t1700000000\t-\t-\t0\t0\toff\ton\toff\t-\t${space}`;
  const listed = parseList(
    [
      line('zones/a', 'filesystem', '1072693248\t40960\t1048576\t1073741824\t-'),
      line('zones/a/disk0', 'volume', '69206016\t0\t70254592\t0\t67108864'),
    ].join('\n'),
    ['zones/a', 'zones/a/disk0'],
  );
  assert.deepEqual(listed.get('zones/a')!.space, {
    refreservation: 1072693248,
    usedbydataset: 40960,
    available: 1048576,
    refquota: 1073741824,
    volsize: 0,
  });
  assert.deepEqual(listed.get('zones/a/disk0')!.space, {
    refreservation: 69206016,
    usedbydataset: 0,
    available: 70254592,
    refquota: 0,
    volsize: 67108864,
  });
  assert.equal(
    parseList(line('zones/b', 'filesystem', '').replace(/\t$/, ''), ['zones/b']).get('zones/b')!.space,
    undefined,
    "the backup host's listing has none",
  );
});

it('checkHeadroom refuses a VM whose snapshots do not fit, and leaves a dataset ZFS lacks to the planner', async () => {
  const { checkHeadroom } = await import('../../src/backup/backup-vm.js');
  const state = (name: string, space: DatasetState['space']): [string, DatasetState] => [
    name,
    { name, type: 'volume', guid: '1', snapshots: [], space },
  ];
  const tight = new Map([
    state(`zones/${UUID}`, { refreservation: 0, usedbydataset: 0, available: MIB, refquota: 0, volsize: 0 }),
    state(`zones/${UUID}/disk0`, {
      refreservation: 64 * MIB,
      usedbydataset: 32 * MIB,
      available: MIB,
      refquota: 0,
      volsize: 64 * MIB,
    }),
  ]);
  assert.throws(
    () =>
      checkHeadroom(UUID, { brand: 'bhyve' }, [`zones/${UUID}`, `zones/${UUID}/disk0`, `zones/${UUID}/disk1`], tight),
    /not snapshotted: .*short by/,
  );
  const roomy = new Map([
    state(`zones/${UUID}/disk0`, {
      refreservation: 64 * MIB,
      usedbydataset: 32 * MIB,
      available: GIB,
      refquota: 0,
      volsize: 64 * MIB,
    }),
  ]);
  assert.doesNotThrow(() =>
    checkHeadroom(UUID, { brand: 'bhyve' }, [`zones/${UUID}/disk0`, `zones/${UUID}/disk1`], roomy),
  );
});
