import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyUpTo, streamSize } from '../../src/restore/backup-host-source.js';
import { nicConflict } from '../../src/restore/preflight.js';
import { ASIDE, sharedBase, STAGED, topsOf, withSuffix } from '../../src/restore/replace-vm.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const snap = (name: string, guid: string, createtxg: number) => ({ name, guid, createtxg, creation: 0, userrefs: 0 });

describe('restore --force: receiving beside the VM', () => {
  it("renames only top datasets: a KVM VM's sibling volumes are tops, bhyve's and delegated children move with the root", () => {
    const kvm = [`zones/${VM}`, `zones/${VM}-disk0`, `zones/${VM}-disk1`];
    assert.deepEqual(topsOf(kvm), kvm);
    const bhyve = [`zones/${VM}`, `zones/${VM}/disk0`, `zones/${VM}/data`, `zones/${VM}/data/pgsql`];
    assert.deepEqual(topsOf(bhyve), [`zones/${VM}`]);
    assert.equal(withSuffix(`zones/${VM}/data/pgsql`, bhyve, STAGED), `zones/${VM}${STAGED}/data/pgsql`);
    // `zones/<uuid>-disk0` is not inside `zones/<uuid>`: its own top, its own suffix
    assert.equal(withSuffix(`zones/${VM}-disk0`, kvm, ASIDE), `zones/${VM}-disk0${ASIDE}`);
    assert.throws(() => withSuffix('zones/other', kvm, STAGED), /not within/);
  });

  it('starts from the newest snapshot the host shares with the backup, by guid, whatever it is called here', () => {
    const history = [
      { name: 'daily-a', guid: '1' },
      { name: 'daily-b', guid: '2' },
      { name: 'daily-c', guid: '3' },
    ];
    const here = [snap('renamed-b', '2', 20), snap('daily-a', '1', 10), snap('daily-z', '9', 30)];
    assert.deepEqual(sharedBase(here, history), { local: 'renamed-b', ref: { name: 'daily-b', guid: '2' } });
    // a snapshot of the same name but another guid is another snapshot: nothing shared, a full receive
    assert.equal(sharedBase([snap('daily-c', '33', 40)], history), undefined);
    assert.equal(sharedBase(here, undefined), undefined);
  });

  it("a set's history ends at its own snapshot: a newer one here cannot be a base for an older set", () => {
    const listed = [snap('b1', '1', 1), snap('b2', '2', 2), snap('b3', '3', 3)];
    assert.deepEqual(historyUpTo(listed, 'b2'), [
      { name: 'b1', guid: '1' },
      { name: 'b2', guid: '2' },
    ]);
    assert.equal(sharedBase([snap('b3', '3', 3)], historyUpTo(listed, 'b2')), undefined);
  });

  it('reads the size `zfs send -nP` prints, and 0 when it prints none', () => {
    assert.equal(streamSize('incremental\tdaily-a\tzones/x@daily-b\t1234\nsize\t1234\n'), 1234);
    assert.equal(streamSize('full\tzones/x@daily-b\t99\nsize\t99'), 99);
    assert.equal(streamSize(''), 0);
  });

  it('refuses nics another VM has, as vmadm create would, and names the VM and what it has', () => {
    const ours = [{ mac: 'aa', nic_tag: 'admin', ips: ['10.0.0.5/24'], vrrp_vrid: 7 }];
    const other = (nic: Record<string, unknown>, state = 'running') => [{ uuid: 'u2', state, nics: [nic] }];
    assert.equal(nicConflict(ours, other({ mac: 'aa' })), 'VM u2 already has MAC aa');
    assert.equal(
      nicConflict(ours, other({ mac: 'bb', nic_tag: 'admin', ip: '10.0.0.5' })),
      'VM u2 already has IP 10.0.0.5 on nic tag admin',
    );
    assert.equal(nicConflict(ours, other({ mac: 'bb', nic_tag: 'external', ip: '10.0.0.5' })), undefined);
    assert.equal(nicConflict(ours, other({ mac: 'bb', vrrp_vrid: 7 })), 'VM u2 already has VRRP VRID 7');
    assert.equal(nicConflict(ours, other({ mac: 'aa' }, 'failed')), undefined, 'a failed VM does not count');
    assert.equal(nicConflict([{ mac: 'cc', ips: ['dhcp'] }], other({ mac: 'dd', ips: ['dhcp'] })), undefined);
  });
});
