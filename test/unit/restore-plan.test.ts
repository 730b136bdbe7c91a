import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickBackupSet } from '../../src/restore/backup-sets.js';
import { createPayload } from '../../src/restore/create-payload.js';
import type { DatasetState } from '../../src/zfs/list.js';

const ds = (name: string, snaps: string[]): DatasetState => ({ name, type: 'filesystem', guid: 'g', snapshots: snaps.map((s, i) => ({ name: s, guid: `${name}${s}`, createtxg: i, creation: i, userrefs: 0 })) });

describe('restore planning', () => {
  it('picks the newest set present on every dataset and stored with a spec', () => {
    const remote = new Map([['b/u', ds('b/u', ['d-1', 'd-2', 'd-3'])], ['b/u/data', ds('b/u/data', ['d-1', 'd-2'])]]);
    assert.deepEqual(pickBackupSet(['d-1', 'd-2', 'd-3'], ['b/u', 'b/u/data'], remote), { snapshot: 'd-2' });
    assert.deepEqual(pickBackupSet(['d-1'], ['b/u', 'b/u/data'], remote), { snapshot: 'd-1' });
    assert.deepEqual(pickBackupSet(['d-1', 'd-2'], ['b/u', 'b/u/data'], remote, 'd-1'), { snapshot: 'd-1' });
    assert.match((pickBackupSet(['d-3'], ['b/u', 'b/u/data'], remote, 'd-3') as { error: string }).error, /no complete backup set d-3/);
    assert.match((pickBackupSet(['d-1'], ['b/u', 'b/u/gone'], remote) as { error: string }).error, /missing on the backup host: b\/u\/gone/);
  });

  it('strips read-only fields, asks for the delegated dataset again and keeps MACs and image disks', () => {
    const spec = {
      uuid: 'u', brand: 'kvm', zonename: 'u', state: 'running', zfs_filesystem: 'zones/u', zpool: 'zones', hvm: true, ram: 256,
      create_timestamp: 't', datasets: ['zones/u/data'], nics: [{ mac: '92:aa', interface: 'net0' }], quota: 10,
      disks: [
        { path: '/dev/zvol/rdsk/zones/u-disk0', zfs_filesystem: 'zones/u-disk0', image_uuid: 'i', image_size: 64, size: 64, block_size: 8192, refreservation: 64 },
        { path: '/dev/zvol/rdsk/zones/u-disk1', zfs_filesystem: 'zones/u-disk1', size: 32, block_size: 8192 },
      ],
    };
    const payload = createPayload(spec, { uuid: 'new' });
    assert.equal(payload.uuid, 'new');
    assert.equal(payload.autoboot, false);
    assert.equal(payload.delegate_dataset, true);
    for (const key of ['zonename', 'state', 'zfs_filesystem', 'zpool', 'create_timestamp', 'datasets', 'hvm']) assert.ok(!(key in payload), key);
    assert.equal(payload.ram, 256);
    assert.deepEqual(payload.nics, [{ mac: '92:aa', interface: 'net0' }]);
    assert.deepEqual(payload.disks, [{ image_uuid: 'i', image_size: 64 }, { size: 32, block_size: 8192 }]);
  });
});
