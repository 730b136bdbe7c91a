import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickBackupSet } from '../../src/restore/backup-sets.js';
import { nicLines } from '../../src/cli/restore-command.js';
import { createPayload, nicChanges } from '../../src/restore/create-payload.js';
import { installImageFromStream, installManifest, measureFile } from '../../src/restore/image-install.js';
import { LocalHost } from '../../src/host/local.js';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDirectory } from './scratch.js';
import { ScriptedHost } from './scripted-host.js';
import { conflictingVm, vrrpRuleError, withVrrpMacs } from '../sim/nic-conflicts.js';

type Nic = Record<string, unknown>;
import { delegatedRole, diskPropertyCommands, receiveArgv } from '../../src/restore/received-properties.js';
import { recreateStopped } from '../../src/restore/restore-vm.js';
import { releaseZonecopyHolds } from '../../src/zfs/holds.js';
import type { DatasetState } from '../../src/zfs/list.js';

const ds = (name: string, snaps: string[]): DatasetState => ({
  name,
  type: 'filesystem',
  guid: 'g',
  snapshots: snaps.map((s, i) => ({ name: s, guid: `${name}${s}`, createtxg: i, creation: i, userrefs: 0 })),
});

describe('restore planning', () => {
  it('picks the newest set present on every dataset and stored with a spec', () => {
    const remote = new Map([
      ['b/u', ds('b/u', ['d-1', 'd-2', 'd-3'])],
      ['b/u/data', ds('b/u/data', ['d-1', 'd-2'])],
    ]);
    assert.deepEqual(pickBackupSet(['d-1', 'd-2', 'd-3'], ['b/u', 'b/u/data'], remote), { snapshot: 'd-2' });
    assert.deepEqual(pickBackupSet(['d-1'], ['b/u', 'b/u/data'], remote), { snapshot: 'd-1' });
    assert.deepEqual(pickBackupSet(['d-1', 'd-2'], ['b/u', 'b/u/data'], remote, 'd-1'), { snapshot: 'd-1' });
    assert.match(
      (pickBackupSet(['d-3'], ['b/u', 'b/u/data'], remote, 'd-3') as { error: string }).error,
      /no complete backup set d-3/,
    );
    assert.match(
      (pickBackupSet(['d-1'], ['b/u', 'b/u/gone'], remote) as { error: string }).error,
      /missing on the backup host: b\/u\/gone/,
    );
  });

  it('strips read-only fields, asks for the delegated dataset again and keeps MACs and image disks', () => {
    const spec = {
      uuid: 'u',
      brand: 'kvm',
      zonename: 'u',
      state: 'running',
      zfs_filesystem: 'zones/u',
      zpool: 'zones',
      hvm: true,
      ram: 256,
      create_timestamp: 't',
      datasets: ['zones/u/data'],
      nics: [{ mac: '92:aa', interface: 'net0' }],
      quota: 10,
      disks: [
        {
          path: '/dev/zvol/rdsk/zones/u-disk0',
          zfs_filesystem: 'zones/u-disk0',
          image_uuid: 'i',
          image_size: 64,
          size: 64,
          block_size: 8192,
          refreservation: 64,
        },
        { path: '/dev/zvol/rdsk/zones/u-disk1', zfs_filesystem: 'zones/u-disk1', size: 32, block_size: 8192 },
      ],
    };
    const payload = createPayload(spec, { uuid: 'new' });
    assert.equal(payload.uuid, 'new');
    assert.equal(payload.autoboot, false);
    assert.equal(payload.delegate_dataset, true);
    for (const key of ['zonename', 'state', 'zfs_filesystem', 'zpool', 'create_timestamp', 'datasets', 'hvm'])
      assert.ok(!(key in payload), key);
    assert.equal(payload.ram, 256);
    assert.deepEqual(payload.nics, [{ mac: '92:aa', interface: 'net0' }]);
    assert.deepEqual(payload.disks, [
      { image_uuid: 'i', image_size: 64 },
      { size: 32, block_size: 8192 },
    ]);
  });
});

const scratch = scratchDirectory('zonecopy-restore-plan-');

describe('restore fidelity (issue 17, §2.3, §2.4, §2.9, §2.12)', () => {
  it('hands imgadm install a manifest that describes the raw stream it is given, other fields kept', () => {
    const stored = {
      uuid: 'i',
      name: 'base',
      files: [{ sha1: '0'.repeat(40), size: 1048576, compression: 'gzip', dataset_guid: '123' }],
    };
    assert.deepEqual(installManifest(stored, { size: 5000, sha1: 'ab'.repeat(20) }), {
      uuid: 'i',
      name: 'base',
      files: [{ dataset_guid: '123', sha1: 'ab'.repeat(20), size: 5000, compression: 'none' }],
    });
    assert.deepEqual(installManifest({ uuid: 'i' }, { size: 1, sha1: 'c' }).files, [
      { sha1: 'c', size: 1, compression: 'none' },
    ]);
  });

  it('measures a file written on a host (the object-storage path) by reading it back whole', async () => {
    const file = join(scratch(), 'image.zfs');
    const bytes = randomBytes(3 << 20);
    writeFileSync(file, bytes);
    const local = new LocalHost(false);
    assert.deepEqual(await measureFile(local, file), {
      size: bytes.length,
      sha1: createHash('sha1').update(bytes).digest('hex'),
    });
    await assert.rejects(measureFile(local, `${file}.missing`), /exited 1/);
    await local.close();
  });

  it('puts the image under /var/tmp and removes it when imgadm install fails', async () => {
    const host = new ScriptedHost([
      ['mktemp', { stdout: '/var/tmp/zonecopy-image.abc123\n' }],
      ['imgadm install', { exitCode: 1, stderr: 'imgadm install: error (DownloadError): image file size error' }],
    ]);
    let written = '';
    await assert.rejects(
      installImageFromStream(
        host,
        { uuid: 'i' },
        {
          describe: (file) => `send > ${file}`,
          write: async (file) => {
            written = file;
            return { size: 3, sha1: 'x' };
          },
        },
      ),
      /image file size error/,
    );
    assert.deepEqual(host.commands[0], ['mktemp', '-d', '/var/tmp/zonecopy-image.XXXXXX']);
    assert.equal(written, '/var/tmp/zonecopy-image.abc123/image.zfs');
    assert.deepEqual(host.commands.at(-1), ['rm', '-rf', '/var/tmp/zonecopy-image.abc123']);
    const writing = new ScriptedHost([['mktemp', { stdout: '/var/tmp/zonecopy-image.q\n' }]]);
    await assert.rejects(
      installImageFromStream(
        writing,
        {},
        { describe: () => '', write: () => Promise.reject(new Error('send failed')) },
      ),
      /send failed/,
    );
    assert.deepEqual(
      writing.commands.at(-1),
      ['rm', '-rf', '/var/tmp/zonecopy-image.q'],
      'removed when the copy fails too',
    );
    const dry = new ScriptedHost([], true);
    await installImageFromStream(
      dry,
      { files: [{ size: 9, sha1: 'abc' }] },
      {
        describe: (file) => `zfs send zones/i@final > ${file}`,
        write: () => assert.fail('a dry run copies nothing'),
      },
    );
    assert.deepEqual(dry.commands, [], 'a dry run makes no directory it would leave behind');
    const dir = '/var/tmp/zonecopy-image.XXXXXX';
    assert.deepEqual(
      dry.skippedLines,
      [
        `mktemp -d ${dir}`,
        `zfs send zones/i@final > ${dir}/image.zfs`,
        `sh -c cat > "$1" sh ${dir}/manifest.json`,
        `imgadm install -m ${dir}/manifest.json -f ${dir}/image.zfs`,
        `rm -rf ${dir}`,
      ],
      'but prints every step it would take',
    );
  });

  it('a copy beside the original: no MACs (vmadm picks new ones), static IPs dropped with netmask and gateways, dhcp kept', () => {
    const spec = {
      uuid: 'u',
      brand: 'joyent',
      nics: [
        {
          interface: 'net0',
          mac: '92:aa:00:00:00:01',
          nic_tag: 'admin',
          ip: '192.168.1.41',
          ips: ['192.168.1.41/24'],
          netmask: '255.255.255.0',
          gateway: '192.168.1.1',
          gateways: ['192.168.1.1'],
          primary: true,
        },
        { interface: 'net1', mac: '92:aa:00:00:00:02', nic_tag: 'internal', ip: 'dhcp', ips: ['dhcp', 'addrconf'] },
      ],
    };
    const payload = createPayload(spec, { uuid: 'new', copy: true });
    assert.deepEqual(payload.nics, [
      { interface: 'net0', nic_tag: 'admin', primary: true },
      { interface: 'net1', nic_tag: 'internal', ip: 'dhcp', ips: ['dhcp', 'addrconf'] },
    ]);
    assert.deepEqual(createPayload(spec, { uuid: 'u' }).nics, spec.nics, 'the same VM keeps its MACs and IPs');
    const changes = nicChanges(spec.nics, [{ mac: '92:bb:00:00:00:01' }, { mac: '92:bb:00:00:00:02' }]);
    assert.deepEqual(changes, [
      { interface: 'net0', oldMac: '92:aa:00:00:00:01', newMac: '92:bb:00:00:00:01', droppedIps: ['192.168.1.41/24'] },
      { interface: 'net1', oldMac: '92:aa:00:00:00:02', newMac: '92:bb:00:00:00:02', droppedIps: [] },
    ]);
    assert.deepEqual(nicLines({ uuid: 'new', nics: changes }), [
      'net0: MAC 92:aa:00:00:00:01 -> 92:bb:00:00:00:01; static IP 192.168.1.41/24 dropped (give the copy its own: vmadm update new update_nics=...)',
      'net1: MAC 92:aa:00:00:00:02 -> 92:bb:00:00:00:02',
    ]);
    assert.match(
      nicLines({ uuid: 'new', nics: nicChanges(spec.nics, undefined) })[0]!,
      /-> \(chosen by vmadm\)/,
      'a dry run does not know the new MACs',
    );
  });

  it('a copy of a VRRP VM beside it: plain nics (no VRID, no primary IP, no allowed_ips), which the stand-in vmadm accepts where the original spec conflicts', () => {
    const spec = {
      uuid: 'u',
      brand: 'joyent',
      nics: [
        {
          interface: 'net0',
          mac: '00:00:5e:00:01:07',
          nic_tag: 'external',
          ip: '172.18.1.107',
          netmask: '255.255.255.0',
          vrrp_vrid: 7,
          vrrp_primary_ip: '172.18.1.2',
          allowed_ips: ['172.18.1.0/24'],
        },
        {
          interface: 'net1',
          mac: '92:aa:00:00:00:02',
          nic_tag: 'external',
          ip: '172.18.1.2',
          netmask: '255.255.255.0',
        },
      ],
    };
    const original = { uuid: 'u', state: 'running', nics: spec.nics };
    assert.equal(conflictingVm(withVrrpMacs(createPayload(spec, { uuid: 'new' }).nics as Nic[]), [original]), 'u');
    const copied = createPayload(spec, { uuid: 'new', copy: true }).nics as Nic[];
    assert.deepEqual(copied, [
      { interface: 'net0', nic_tag: 'external' },
      { interface: 'net1', nic_tag: 'external' },
    ]);
    assert.equal(vrrpRuleError(withVrrpMacs(copied)), undefined);
    assert.equal(conflictingVm(withVrrpMacs(copied), [original]), undefined);
    assert.deepEqual(nicLines({ uuid: 'new', nics: nicChanges(spec.nics, undefined) }), [
      'net0: MAC 00:00:5e:00:01:07 -> (chosen by vmadm); static IP 172.18.1.107 dropped (give the copy its own: vmadm update new update_nics=...); VRRP VRID 7 dropped (the original keeps it); allowed_ips 172.18.1.0/24 dropped',
      'net1: MAC 92:aa:00:00:00:02 -> (chosen by vmadm); static IP 172.18.1.2 dropped (give the copy its own: vmadm update new update_nics=...)',
    ]);
  });

  it('a vmadm create refused for another VM\'s MAC or IP says so and what to do, not "internal error"', async () => {
    const host = new ScriptedHost([
      [
        'vmadm create',
        { exitCode: 1, stderr: 'Conflict detected with another vm, please check the MAC, IP, and VRID' },
      ],
    ]);
    const spec = {
      uuid: 'u',
      brand: 'joyent',
      zfs_filesystem: 'zones/u',
      nics: [{ mac: '92:aa:00:00:00:01', ip: '10.0.0.5' }],
    };
    await assert.rejects(recreateStopped(spec, 'u', ['zones/u'], host, { copy: false }), {
      name: 'RestoreError',
      message: /^vmadm create of VM u on local failed: Conflict detected .*restore a copy with --new-uuid/,
    });
  });

  it('delegated datasets are received unmounted, zoned=on on their top; others as before', () => {
    const delegated = ['zones/u/data'];
    assert.deepEqual(receiveArgv('zones/n/data', { role: delegatedRole('zones/u/data', delegated) }), [
      'zfs',
      'receive',
      '-u',
      '-o',
      'zoned=on',
      'zones/n/data',
    ]);
    assert.deepEqual(receiveArgv('zones/n/data/pg', { role: delegatedRole('zones/u/data/pg', delegated) }), [
      'zfs',
      'receive',
      '-u',
      'zones/n/data/pg',
    ]);
    assert.deepEqual(receiveArgv('zones/n', { origin: 'zones/img@final', role: delegatedRole('zones/u', delegated) }), [
      'zfs',
      'receive',
      '-o',
      'origin=zones/img@final',
      'zones/n',
    ]);
    assert.equal(
      delegatedRole('zones/u/database', delegated),
      undefined,
      'a sibling whose name starts alike is not below it',
    );
  });

  it('zvols get the refreservation the stored spec gives (MiB), nothing else is touched', () => {
    const spec = {
      disks: [
        { zfs_filesystem: 'zones/u-disk0', refreservation: 0 },
        { zfs_filesystem: 'zones/u-disk1', refreservation: 33 },
        { zfs_filesystem: 'zones/u-disk2' },
      ],
    };
    const pairs = [0, 1, 2].map((i) => ({ source: `zones/u-disk${i}`, into: `zones/n-disk${i}` }));
    assert.deepEqual(diskPropertyCommands(spec, pairs), [
      ['zfs', 'set', 'refreservation=none', 'zones/n-disk0'],
      ['zfs', 'set', 'refreservation=33M', 'zones/n-disk1'],
    ]);
  });

  it("releases zonecopy's holds only, one zfs release per tag, and only prints them in a dry run", async () => {
    const row = (...cells: string[]) => cells.join('\t');
    const host = (dryRun: boolean) =>
      new ScriptedHost(
        [
          [
            'zfs list',
            {
              stdout: [
                row('zones/u', 'filesystem', '1', '1', '1', '-', '-', '-', '0', 'off', 'on'),
                row('zones/u@a', 'snapshot', '2', '2', '2', '-', '-', '3', '-', '-', '-'),
                row('zones/u@b', 'snapshot', '3', '3', '3', '-', '-', '0', '-', '-', '-'),
                row('zones/u/data', 'filesystem', '4', '4', '4', '-', '-', '-', '0', 'off', 'on'),
                row('zones/u/data@a', 'snapshot', '5', '5', '5', '-', '-', '1', '-', '-', '-'),
              ].join('\n'),
            },
          ],
          [
            'zfs holds',
            {
              stdout: [
                row('zones/u@a', 'zonecopy:backup:daily', 'Mon'),
                row('zones/u@a', 'operator-keep', 'Mon'),
                row('zones/u@a', 'zonecopy:backup:weekly', 'Mon'),
                row('zones/u/data@a', 'zonecopy:backup:daily', 'Mon'),
              ].join('\n'),
            },
          ],
        ],
        dryRun,
      );
    const live = host(false);
    const released = await releaseZonecopyHolds(live, ['zones/u']);
    assert.equal(released.length, 3);
    assert.deepEqual(
      live.commands.find((c) => c[1] === 'holds'),
      ['zfs', 'holds', '-H', 'zones/u@a', 'zones/u/data@a'],
      'only snapshots with holds are asked about',
    );
    assert.deepEqual(
      live.commands.filter((c) => c[1] === 'release'),
      [
        ['zfs', 'release', 'zonecopy:backup:daily', 'zones/u@a', 'zones/u/data@a'],
        ['zfs', 'release', 'zonecopy:backup:weekly', 'zones/u@a'],
      ],
    );
    const dry = host(true);
    assert.equal((await releaseZonecopyHolds(dry, ['zones/u'])).length, 3);
    assert.deepEqual(
      dry.commands.filter((c) => c[1] === 'release'),
      [],
    );
    assert.deepEqual(dry.skippedLines, [
      'zfs release zonecopy:backup:daily zones/u@a zones/u/data@a',
      'zfs release zonecopy:backup:weekly zones/u@a',
    ]);
  });
});
