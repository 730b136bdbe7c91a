import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { discoverDatasets } from '../../src/smartos/discovery.js';
import type { VmSpec } from '../../src/smartos/vmadm.js';

const U = '0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6';

describe('discoverDatasets', () => {
  it('takes the zone root, delegated datasets and disks from the vmadm object only', () => {
    const kvm: VmSpec = {
      uuid: U,
      brand: 'kvm',
      zfs_filesystem: `zones/${U}`,
      disks: [{ zfs_filesystem: `zones/${U}-disk0` }, { path: `/dev/zvol/rdsk/zones/${U}-disk1` }],
    };
    assert.deepEqual(discoverDatasets(kvm).datasets, [`zones/${U}`, `zones/${U}-disk0`, `zones/${U}-disk1`]);
    const bhyve: VmSpec = {
      uuid: U,
      brand: 'bhyve',
      zfs_filesystem: `zones/${U}`,
      disks: [{ zfs_filesystem: `zones/${U}/disk0` }],
    };
    assert.deepEqual(discoverDatasets(bhyve).datasets, [`zones/${U}`, `zones/${U}/disk0`]);
    const os: VmSpec = { uuid: U, brand: 'joyent', zfs_filesystem: `zones/${U}`, datasets: [`zones/${U}/data`] };
    assert.deepEqual(discoverDatasets(os).datasets, [`zones/${U}`, `zones/${U}/data`]);
  });

  it('excludes by exact name from internal_metadata.smartcopy_exclude and warns about names that match nothing', () => {
    const spec: VmSpec = {
      uuid: U,
      brand: 'joyent',
      zfs_filesystem: `zones/${U}`,
      datasets: [`zones/${U}/data`, `zones/${U}/data2`],
      internal_metadata: { smartcopy_exclude: ` zones/${U}/data , zones/${U}/dat ` },
    };
    const d = discoverDatasets(spec);
    assert.deepEqual(d.datasets, [`zones/${U}`, `zones/${U}/data2`]);
    assert.deepEqual(d.excluded, [`zones/${U}/data`]);
    assert.match(d.warnings[0]!, /zones\/.*\/dat"/);
  });

  it('rejects dataset names that are not ZFS names (hostile vmadm output)', () => {
    assert.throws(
      () => discoverDatasets({ uuid: U, brand: 'joyent', zfs_filesystem: `zones/${U}; rm -rf /` }),
      /invalid dataset name/,
    );
  });
});
