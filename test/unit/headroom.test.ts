/** The pre-snapshot space check: ZFS's accounting of snapshots of datasets with a refreservation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headroomError, parseSpace, snapshotHeadroom, type DatasetSpace } from '../../src/backup/headroom.js';
import type { DatasetState } from '../../src/zfs/list.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const UUID = '0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6';

/**
 * A bhyve VM as VM.js setQuotaBhyve leaves it: root refquota 1 GiB, refreservation 1 GiB − 1 MiB,
 * quota = reservation = refquota + Σ zvol refreservation; `free` is what is left under that quota.
 */
function bhyve(free: number, disks: Array<{ refreservation: number; unique: number; volsize: number }>, rootUnique = 40_000): DatasetSpace[] {
  const root: DatasetSpace = { name: `zones/${UUID}`, refreservation: GIB - MIB, usedbydataset: rootUnique, available: Math.min(free + GIB - MIB - rootUnique, GIB - rootUnique), refquota: GIB, volsize: 0 };
  return [root, ...disks.map((d, i) => ({
    name: `zones/${UUID}/disk${i}`, refreservation: d.refreservation, usedbydataset: d.unique, available: free + Math.max(0, d.refreservation - d.unique), refquota: 0, volsize: d.volsize,
  }))];
}

describe('snapshotHeadroom', () => {
  const cases: Array<[string, DatasetSpace[], { needed: number; free?: number; shortfall: number }]> = [
    ['bhyve without flexible_disk_size: 1 MiB left, 3 MiB written to a disk: short (the defect)',
      bhyve(MIB - 40_000, [{ refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB }, { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB }]),
      { needed: 40_000 + 3 * MIB, free: MIB - 40_000, shortfall: 40_000 + 3 * MIB - (MIB - 40_000) }],
    ['bhyve with 64 MiB of flexible headroom: fits',
      bhyve(64 * MIB, [{ refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB }, { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB }]),
      { needed: 40_000 + 3 * MIB, free: 64 * MIB, shortfall: 0 }],
    ['a fresh clone (nothing unique) and a small root fit in the 1 MiB VM.js leaves',
      bhyve(MIB - 40_000, [{ refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB }]),
      { needed: 40_000, free: MIB - 40_000, shortfall: 0 }],
    ['each disk alone fits, both in one atomic snapshot do not: the charges add up',
      bhyve(5 * MIB, [{ refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB }, { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB }], 0),
      { needed: 6 * MIB, free: 5 * MIB, shortfall: MIB }],
    ['a disk written beyond its refreservation is charged only its refreservation',
      bhyve(10 * MIB, [{ refreservation: 8 * MIB, unique: 9 * MIB, volsize: 8 * MIB }], 0),
      { needed: 8 * MIB, free: 10 * MIB, shortfall: 0 }],
    ['sparse volumes and OS zones (no refreservation) need nothing',
      [{ name: 'zones/vm', refreservation: 0, usedbydataset: 500 * MIB, available: 0, refquota: 0, volsize: 0 }, { name: 'zones/vm-disk0', refreservation: 0, usedbydataset: GIB, available: 0, refquota: 0, volsize: GIB }],
      { needed: 0, free: 0, shortfall: 0 }],
    ['only datasets with a refquota: no verdict (their available is capped by it)',
      [{ name: 'zones/vm', refreservation: GIB - MIB, usedbydataset: 2 * MIB, available: GIB - 2 * MIB, refquota: GIB, volsize: 0 }],
      { needed: 2 * MIB, free: undefined, shortfall: 0 }],
  ];
  for (const [name, datasets, expected] of cases) {
    it(name, () => assert.deepEqual(snapshotHeadroom(datasets), expected));
  }
});

describe('headroomError', () => {
  const disks = [{ refreservation: 66 * MIB, unique: 0, volsize: 64 * MIB }, { refreservation: 33 * MIB, unique: 3 * MIB, volsize: 32 * MIB }];
  const datasets = bhyve(MIB - 40_000, disks);
  const headroom = snapshotHeadroom(datasets);

  it('bhyve: names the shortfall in bytes and the flexible_disk_size that covers it (disks 96 MiB + the shortfall rounded up)', () => {
    const message = headroomError(UUID, 'bhyve', headroom, datasets);
    assert.match(message, new RegExp(`short by ${headroom.shortfall} bytes`));
    assert.match(message, new RegExp(`vmadm update ${UUID} flexible_disk_size=${96 + Math.ceil(headroom.shortfall / MIB)}\\b`));
  });

  it('bhyve with flexible_disk_size already set: counts from it', () => {
    assert.match(headroomError(UUID, 'bhyve', headroom, datasets, 200), new RegExp(`flexible_disk_size=${200 + Math.ceil(headroom.shortfall / MIB)}\\b`));
  });

  it('other brands: the bytes to free, no vmadm property that does not apply', () => {
    const message = headroomError(UUID, 'kvm', headroom, datasets);
    assert.match(message, new RegExp(`Free at least ${headroom.shortfall} bytes`));
    assert.doesNotMatch(message, /flexible_disk_size/);
  });
});

it('parseSpace reads zfs list -Hp output, "-" (a filesystem\'s volsize) as 0', () => {
  assert.deepEqual(parseSpace(`zones/a\t1072693248\t40960\t1048576\t1073741824\t-\nzones/a/disk0\t69206016\t0\t70254592\t0\t67108864\n`), [
    { name: 'zones/a', refreservation: 1072693248, usedbydataset: 40960, available: 1048576, refquota: 1073741824, volsize: 0 },
    { name: 'zones/a/disk0', refreservation: 69206016, usedbydataset: 0, available: 70254592, refquota: 0, volsize: 67108864 },
  ]);
});

it('checkHeadroom lists only where a volume is, and leaves a dataset ZFS lacks to the planner', async () => {
  const { checkHeadroom } = await import('../../src/backup/backup-vm.js');
  const calls: string[][] = [];
  const host = {
    run: async (argv: readonly string[]) => {
      calls.push([...argv]);
      return { host: 'local', command: argv.join(' '), stdout: `zones/${UUID}\t0\t40960\t${GIB}\t${GIB}\t-\n`, stderr: '', exitCode: 0 };
    },
  } as unknown as import('../../src/host/host.js').Host;
  const state = (name: string, type: 'filesystem' | 'volume'): [string, DatasetState] => [name, { name, type, guid: '1', snapshots: [] }];
  const zone = new Map([state(`zones/${UUID}`, 'filesystem'), state(`zones/${UUID}/data`, 'filesystem')]);
  await checkHeadroom(UUID, { brand: 'joyent' }, [`zones/${UUID}`, `zones/${UUID}/data`], zone, host);
  assert.equal(calls.length, 0, 'an OS zone pays no listing');
  const hvm = new Map([state(`zones/${UUID}`, 'filesystem'), state(`zones/${UUID}-disk0`, 'volume')]);
  await checkHeadroom(UUID, { brand: 'kvm' }, [`zones/${UUID}`, `zones/${UUID}-disk0`, `zones/${UUID}-disk1`], hvm, host);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]!.slice(-2), [`zones/${UUID}`, `zones/${UUID}-disk0`], 'the missing disk1 is not asked for');
});
