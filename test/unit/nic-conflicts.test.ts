import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictingVm, vrrpMac, vrrpRuleError, withVrrpMacs } from '../sim/nic-conflicts.js';

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

describe('vmadm create stand-in: VRRP nics (smartos-live VM.js validateNics, normalizeNics)', () => {
  const primary = { nic_tag: 'external', ip: '172.18.1.2', netmask: '255.255.255.0' };
  const vrrp = (vrid: number, extra: Record<string, unknown> = {}) => ({
    nic_tag: 'external',
    ip: `172.18.1.${100 + vrid}`,
    vrrp_vrid: vrid,
    vrrp_primary_ip: '172.18.1.2',
    ...extra,
  });

  it('accepts VRRP nics whose primary IP is another nic of the VM, with their VRRP MAC or none', () => {
    assert.equal(vrrpRuleError([vrrp(1), vrrp(2, { mac: '00:00:5e:00:01:02' }), primary]), undefined);
    assert.equal(vrrpMac(10), '00:00:5e:00:01:0a');
    assert.deepEqual(
      withVrrpMacs([vrrp(1), primary]).map((n) => n.mac),
      ['00:00:5e:00:01:01', undefined],
    );
  });

  it('refuses what vmadm refuses, with its message', () => {
    const cases: Array<[string, Array<Record<string, unknown>>]> = [
      ['Cannot set both mac and vrrp_vrid', [vrrp(1, { mac: '92:aa:00:00:00:01' }), primary]],
      ['Cannot add multiple NICs with the same VRID: 1', [vrrp(1), vrrp(1, { ip: '172.18.1.120' }), primary]],
      ['vrrp_vrid set but not vrrp_primary_ip', [{ nic_tag: 'external', ip: '172.18.1.101', vrrp_vrid: 1 }, primary]],
      ['Cannot set vrrp_primary_ip to the IP of a VRRP nic', [vrrp(1, { vrrp_primary_ip: '172.18.1.101' }), primary]],
      ['VM cannot contain only VRRP nics', [vrrp(1)]],
      ['vrrp_primary_ip must belong to the same VM', [vrrp(1), { ...primary, ip: '172.18.1.3' }]],
      ['Invalid value(s) for: nics.*.vrrp_vrid', [vrrp(256), primary]],
    ];
    for (const [message, nics] of cases) assert.equal(vrrpRuleError(nics), message, message);
  });

  it('a VRRP nic without a MAC conflicts with the VM that has its VRID', () => {
    const original = { uuid: 'orig', state: 'running', nics: withVrrpMacs([vrrp(7), primary]) };
    assert.equal(
      conflictingVm(withVrrpMacs([{ nic_tag: 'external', vrrp_vrid: 7, vrrp_primary_ip: '10.0.0.1' }]), [original]),
      'orig',
    );
  });
});
