import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictingVm } from '../sim/nic-conflicts.js';

const other = {
  uuid: 'other',
  state: 'running',
  nics: [{ nic_tag: 'admin', mac: '92:aa:bb:cc:dd:01', ip: '192.168.1.41', netmask: '255.255.255.0' }],
};

describe('vmadm create stand-in: network conflicts (smartos-live VM.js lookupConflicts)', () => {
  it('refuses a MAC another VM has, whatever its tag', () => {
    assert.equal(conflictingVm([{ nic_tag: 'external', mac: '92:aa:bb:cc:dd:01' }], [other]), 'other');
  });

  it('refuses a static IP another VM has on the same nic tag and VLAN, in ip or ips form', () => {
    assert.equal(conflictingVm([{ nic_tag: 'admin', ip: '192.168.1.41' }], [other]), 'other');
    assert.equal(conflictingVm([{ nic_tag: 'admin', ips: ['192.168.1.41/24'] }], [other]), 'other');
    assert.equal(
      conflictingVm([{ nic_tag: 'external', ip: '192.168.1.41' }], [other]),
      undefined,
      'another tag is another network',
    );
    assert.equal(
      conflictingVm([{ nic_tag: 'admin', vlan_id: 5, ip: '192.168.1.41' }], [other]),
      undefined,
      'another VLAN',
    );
  });

  it('lets dhcp, addrconf, new MACs and failed VMs pass, and checks VRIDs', () => {
    const dhcp = { uuid: 'd', nics: [{ nic_tag: 'admin', ip: 'dhcp', ips: ['addrconf'] }] };
    assert.equal(conflictingVm([{ nic_tag: 'admin', ip: 'dhcp', ips: ['addrconf'] }], [dhcp]), undefined);
    assert.equal(
      conflictingVm([{ nic_tag: 'admin', mac: '92:aa:bb:cc:dd:02', ip: '192.168.1.42' }], [other]),
      undefined,
    );
    assert.equal(conflictingVm([{ nic_tag: 'admin', ip: '192.168.1.41' }], [{ ...other, state: 'failed' }]), undefined);
    assert.equal(conflictingVm([{ nic_tag: 'admin', vrrp_vrid: 7 }], [{ uuid: 'v', nics: [{ vrrp_vrid: 7 }] }]), 'v');
  });
});
