/** Discovery from vmadm, atomic snapshots and clone origins, for every brand, on real ZFS. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import {
  exists,
  resetHosts,
  run,
  sh,
  snapshotsOf,
  target,
  writeConfig,
  zfsGet,
  zonecopy,
  type TestConfig,
} from './harness.js';
import { IMAGES } from '../sim/fixtures.js';

/** The backup host's sshd log: one `Accepted publickey` line per login. */
const SSHD_LOG = '/etc/zonecopy-test/backup-host/sshd.log';
const logins = async () => Number((await sh(`grep -c 'Accepted publickey' ${SSHD_LOG} || true`)).trim());

async function datasetsOf(uuid: string): Promise<string[]> {
  const spec = JSON.parse(await sh(`vmadm get ${uuid}`)) as {
    zfs_filesystem: string;
    datasets?: string[];
    disks?: Array<{ zfs_filesystem: string }>;
  };
  return [spec.zfs_filesystem, ...(spec.datasets ?? []), ...(spec.disks ?? []).map((d) => d.zfs_filesystem)];
}

describe('discovery and snapshots', () => {
  let config: TestConfig;
  const uuids: Record<string, string> = {};

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent', 'lx', 'kvm', 'bhyve']);
    for (const brand of ['joyent', 'lx', 'kvm', 'bhyve']) uuids[brand] = await fixtureUuid(brand);
    config = writeConfig();
  });

  it('clones sharing one origin wait for it: a KVM and a bhyve VM with two disks of one image, first backup of both in one run, one OpenSSH login', async () => {
    const image = IMAGES.debian;
    const vms = { kvm: 'd2c0a7e4-3b1f-4c6e-9a8d-5e4f3a2b1c01', bhyve: 'd2c0a7e4-3b1f-4c6e-9a8d-5e4f3a2b1c02' };
    for (const [brand, uuid] of Object.entries(vms)) {
      const disks = [
        { image_uuid: image, boot: true, model: 'virtio' },
        { image_uuid: image, model: 'virtio' },
      ];
      const created = await run('vmadm', ['create'], {
        input: JSON.stringify({ uuid, brand, alias: `twin-${brand}`, ram: 256, vcpus: 1, quota: 1, disks }),
      });
      assert.equal(created.code, 0, created.stderr);
    }
    // first in the file, so the image is not on the backup host yet (the KVM and bhyve fixtures then find it there)
    const before = await logins();
    const result = await zonecopy(['backup', vms.kvm, vms.bhyve, '--groupName', 'twins', '--json'], config);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.doesNotMatch(result.stderr, /disabling multiplexing/);
    // the run's ssh2 control connection and its one shared OpenSSH connection for the bulk streams
    assert.equal((await logins()) - before, 2, 'SSH logins of the run');

    type Row = { dataset: string; bytes: number; result: string; image?: boolean };
    const report = JSON.parse(result.stdout) as { results: Array<{ uuid: string; datasets: Row[] }> };
    const disks = {
      kvm: [`zones/${vms.kvm}-disk0`, `zones/${vms.kvm}-disk1`],
      bhyve: [`zones/${vms.bhyve}/disk0`, `zones/${vms.bhyve}/disk1`],
    };
    for (const disk of [...disks.kvm, ...disks.bhyve]) {
      assert.equal(await zfsGet(target(disk), 'origin'), `${target(`zones/${image}`)}@final`, disk);
      const sent = (await snapshotsOf(disk)).find((s) => s.name.startsWith('twins-'))!;
      assert.equal((await snapshotsOf(target(disk))).find((s) => s.name === sent.name)?.guid, sent.guid, disk);
    }
    // the image's stream has a row of its own, in the run that sent it, and is not counted in a clone's
    const [kvmRows, bhyveRows] = [report.results[0]!.datasets, report.results[1]!.datasets];
    const imageRow = kvmRows.find((d) => d.image)!;
    assert.deepEqual([imageRow.dataset, imageRow.result], [`zones/${image}`, 'ok']);
    assert.equal(
      bhyveRows.some((d) => d.image),
      false,
      'the second VM finds the image there',
    );
    for (const d of kvmRows.filter((r) => !r.image))
      assert.ok(d.bytes < imageRow.bytes, `${d.dataset}: ${d.bytes} bytes vs the image's ${imageRow.bytes}`);

    // what arrived cannot be changed by accident on the backup host: read-only, never mounted by itself
    for (const dataset of [`zones/${vms.kvm}`, `zones/${vms.bhyve}`, ...disks.kvm, ...disks.bhyve, `zones/${image}`]) {
      assert.equal(await zfsGet(target(dataset), 'readonly'), 'on', dataset);
      if ((await zfsGet(target(dataset), 'type')) === 'filesystem')
        assert.equal(await zfsGet(target(dataset), 'canmount'), 'noauto', dataset);
    }
  });

  it('KVM: the zone root and both sibling -diskN volumes are snapshotted in one atomic zfs snapshot', async () => {
    const uuid = uuids.kvm!;
    const datasets = await datasetsOf(uuid);
    assert.deepEqual(datasets.slice(1), [`zones/${uuid}-disk0`, `zones/${uuid}-disk1`]);
    const result = await zonecopy(['backup', uuid, '--groupName', 'atomic', '--name', 'one'], config);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    // one `zfs snapshot a@s b@s c@s` call commits in a single transaction group
    const txgs = await Promise.all(datasets.map((d) => zfsGet(`${d}@atomic-one`, 'createtxg')));
    assert.equal(new Set(txgs).size, 1, `createtxg per dataset: ${txgs.join(', ')}`);
    for (const d of datasets)
      assert.deepEqual(
        (await snapshotsOf(target(d))).map((s) => s.name),
        ['atomic-one'],
      );
    assert.equal(await zfsGet(target(`zones/${uuid}-disk1`), 'type'), 'volume');
  });

  it('bhyve: child disks are sent once each, not twice (smartcopy defect 5)', async () => {
    const uuid = uuids.bhyve!;
    const datasets = await datasetsOf(uuid);
    assert.deepEqual(datasets.slice(1), [`zones/${uuid}/disk0`, `zones/${uuid}/disk1`]);
    const result = await zonecopy(['backup', uuid, '--groupName', 'daily', '--json'], config);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      results: Array<{ datasets: Array<{ dataset: string; result: string }> }>;
    };
    assert.deepEqual(
      report.results[0]!.datasets.map((d) => [d.dataset, d.result]),
      datasets.map((d) => [d, 'ok']),
    );
    for (const d of datasets) assert.equal((await snapshotsOf(target(d))).length, 1);
  });

  it('never picks datasets by UUID substring: cores, archives and received copies stay out (smartcopy defect 4)', async () => {
    const uuid = uuids.lx!;
    await sh(`zfs create zones/archive-${uuid} && zfs create zones/cores/${uuid} 2>/dev/null || true`);
    const result = await zonecopy(['backup', uuid, '--groupName', 'daily'], config);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await exists(target(`zones/archive-${uuid}`)), false);
    assert.equal(await exists(target(`zones/cores/${uuid}`)), false);
    assert.equal((await snapshotsOf(`zones/archive-${uuid}`)).length, 0);
    assert.equal(await exists(target(`zones/${uuid}`)), true);
  });

  it('LX and OS zone roots arrive as clones of their image, sent once for two VMs of one image (smartcopy defect 6)', async () => {
    const joyent = uuids.joyent!;
    const origin = await zfsGet(`zones/${joyent}`, 'origin');
    assert.match(origin, /^zones\/[0-9a-f-]{36}@final$/);
    const result = await zonecopy(['backup', joyent, '--groupName', 'daily'], config);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await zfsGet(target(`zones/${joyent}`), 'origin'), target(origin.split('@')[0]!) + '@final');
    assert.equal(await zfsGet(`${target(origin.split('@')[0]!)}@final`, 'guid'), await zfsGet(origin, 'guid'));
    // a second VM from the same image: the image is already there by guid and is not sent again
    const second = '7c1f55d2-1b0e-4c71-9a5e-0d6a4c3b2e19';
    await sh(
      `vmadm get ${joyent} > /tmp/vm.json && node -e 'const v=JSON.parse(require("fs").readFileSync("/tmp/vm.json"));process.stdout.write(JSON.stringify({brand:v.brand,uuid:"${second}",alias:"second",image_uuid:v.image_uuid,quota:1}))' | vmadm create`,
    );
    const again = await zonecopy(['backup', second, '--groupName', 'daily', '--json'], config);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await zfsGet(target(`zones/${second}`), 'origin'), target(origin.split('@')[0]!) + '@final');
    const report = JSON.parse(again.stdout) as { results: Array<{ datasets: Array<{ bytes: number }> }> };
    const imageBytes = Number(await zfsGet(origin.split('@')[0]!, 'referenced'));
    assert.ok(
      report.results[0]!.datasets[0]!.bytes < imageBytes,
      `clone stream ${report.results[0]!.datasets[0]!.bytes} bytes vs image ${imageBytes}`,
    );
  });

  it('children created inside the zone under its delegated dataset are backed up too; an encrypted one goes raw (twice) and stays ciphertext on the backup host', async () => {
    const uuid = uuids.joyent!;
    const vault = `zones/${uuid}/data/vault`;
    await sh(`zfs create zones/${uuid}/data/pgsql && echo rows > /zones/${uuid}/data/pgsql/table`);
    await sh(
      `echo 'correct horse battery staple' | zfs create -o encryption=on -o keyformat=passphrase ${vault} && echo first > /zones/${uuid}/data/vault/file`,
    );
    const result = await zonecopy(['backup', uuid, '--groupName', 'child'], config);
    assert.equal(result.code, 0, result.stderr);
    const source = await snapshotsOf(`zones/${uuid}/data/pgsql`);
    const received = await snapshotsOf(target(`zones/${uuid}/data/pgsql`));
    assert.equal(received.length, 1);
    assert.equal(received[0]!.guid, source.find((s) => s.name === received[0]!.name)!.guid);

    // the backup host holds ciphertext it has no key for; the second run goes raw onto it, incrementally
    assert.notEqual(await zfsGet(target(vault), 'encryption'), 'off');
    assert.equal(await zfsGet(target(vault), 'keystatus'), 'unavailable');
    await sh(`echo second >> /zones/${uuid}/data/vault/file`);
    const again = await zonecopy(['backup', uuid, '--groupName', 'child', '--json'], config);
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout) as {
      results: Array<{ datasets: Array<{ dataset: string; mode: string }> }>;
    };
    assert.equal(report.results[0]!.datasets.find((d) => d.dataset === vault)?.mode, 'incremental');
    assert.doesNotMatch(again.stderr + again.stdout, /decrypted/);
    assert.deepEqual(await snapshotsOf(target(vault)), await snapshotsOf(vault));
    assert.equal(await zfsGet(target(vault), 'keystatus'), 'unavailable');
  });

  it('smartcopy_exclude in internal_metadata excludes by exact name', async () => {
    const uuid = uuids.joyent!;
    await sh(`echo '{"set_internal_metadata":{"smartcopy_exclude":"zones/${uuid}/data"}}' | vmadm update ${uuid}`);
    const before = (await snapshotsOf(`zones/${uuid}/data`)).length;
    const result = await zonecopy(['backup', uuid, '--groupName', 'excl'], config);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await snapshotsOf(`zones/${uuid}/data`)).length, before);
    assert.ok((await snapshotsOf(`zones/${uuid}`)).some((s) => s.name.startsWith('excl-')));
  });

  it('a dataset that vmadm lists but ZFS lacks is an error naming it, before any snapshot', async () => {
    const uuid = uuids.kvm!;
    await sh(`zfs rename zones/${uuid}-disk1 zones/${uuid}-moved`);
    try {
      const result = await zonecopy(['backup', uuid, '--groupName', 'missing'], config);
      assert.equal(result.code, 1);
      assert.match(result.stdout + result.stderr, new RegExp(`zones/${uuid}-disk1, but ZFS has no such dataset`));
      assert.equal(
        (await snapshotsOf(`zones/${uuid}`)).some((s) => s.name.startsWith('missing-')),
        false,
      );
    } finally {
      await sh(`zfs rename zones/${uuid}-moved zones/${uuid}-disk1`);
    }
  });

  it('a snapshot that cannot be taken stops the run before anything is sent (smartcopy defect 3)', async () => {
    const uuid = uuids.kvm!;
    await sh(`zfs snapshot zones/${uuid}-disk0@clash-x`);
    const remoteBefore = await snapshotsOf(target(`zones/${uuid}`));
    const result = await zonecopy(['backup', uuid, '--groupName', 'clash', '--name', 'x'], config);
    assert.equal(result.code, 1);
    assert.match(result.stdout + result.stderr, /already exists/);
    assert.deepEqual(await snapshotsOf(target(`zones/${uuid}`)), remoteBefore);
    assert.equal(
      (await snapshotsOf(`zones/${uuid}`)).some((s) => s.name === 'clash-x'),
      false,
    );
  });

  // a bhyve VM as the simulator's vmadm creates it without flexible_disk_size: quotas as VM.js setQuotaBhyve sets them
  const noHeadroom = 'e5a1f0c2-7b3d-4e8a-9c1f-2d3e4f5a6b70';
  it('stand-in: vmadm create of a bhyve VM sets quotas as VM.js does; without headroom (flexible_disk_size), zfs snapshot of a written zvol fails (out of space)', async () => {
    const created = await run('vmadm', ['create'], {
      input: JSON.stringify({
        uuid: noHeadroom,
        brand: 'bhyve',
        alias: 'no-headroom',
        ram: 256,
        quota: 1,
        disks: [{ size: 32, boot: true }],
      }),
    });
    assert.equal(created.code, 0, created.stderr);
    const [root, disk] = [`zones/${noHeadroom}`, `zones/${noHeadroom}/disk0`];
    const [quota, reservation, refreservation, refquota, diskRefres, volsize] = await Promise.all([
      zfsGet(root, 'quota'),
      zfsGet(root, 'reservation'),
      zfsGet(root, 'refreservation'),
      zfsGet(root, 'refquota'),
      zfsGet(disk, 'refreservation'),
      zfsGet(disk, 'volsize'),
    ]).then((values) => values.map(Number));
    assert.equal(refquota, 1024 ** 3);
    assert.ok(
      diskRefres! >= volsize!,
      `a non-sparse zvol reserves its size: refreservation ${diskRefres} < volsize ${volsize}`,
    );
    assert.equal(quota, refquota! + diskRefres!);
    assert.equal(reservation, quota);
    assert.equal(refreservation, refquota! - 1024 ** 2);
    await sh(
      `udevadm settle; for i in $(seq 50); do [ -e /dev/zvol/${disk} ] && break; sleep 0.1; done; head -c 4M /dev/urandom | dd of=/dev/zvol/${disk} bs=1M conv=notrunc,fsync status=none; sync`,
    );
    const snapshot = await run('zfs', ['snapshot', `${root}@probe`, `${disk}@probe`]);
    assert.notEqual(snapshot.code, 0, 'the snapshot fit without headroom');
    assert.match(snapshot.stderr, /out of space/);
  });

  it("bhyve without headroom: that VM fails before any snapshot, naming the shortfall and the vmadm update that fixes it; the run's other VM is backed up", async () => {
    const other = uuids.lx!;
    const result = await zonecopy(['backup', noHeadroom, other, '--groupName', 'headroom'], config);
    assert.equal(result.code, 1, result.stderr + result.stdout);
    const output = result.stdout + result.stderr;
    assert.match(output, /short by \d+ bytes/);
    const fix = new RegExp(`vmadm update ${noHeadroom} flexible_disk_size=(\\d+)`).exec(output);
    assert.ok(fix, output);
    for (const dataset of [`zones/${noHeadroom}`, `zones/${noHeadroom}/disk0`])
      assert.deepEqual(await snapshotsOf(dataset), [], dataset);
    assert.ok(
      (await snapshotsOf(target(`zones/${other}`))).some((s) => s.name.startsWith('headroom-')),
      'the other VM was not backed up',
    );
    // the change the message names is enough
    const updated = await run('vmadm', ['update', noHeadroom, `flexible_disk_size=${fix[1]}`]);
    assert.equal(updated.code, 0, updated.stderr);
    const again = await zonecopy(['backup', noHeadroom, '--groupName', 'headroom'], config);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal((await snapshotsOf(`zones/${noHeadroom}/disk0`)).length, 1);
  });

  it('rejects hostile names in flags before touching anything', async () => {
    const result = await run(
      `${process.env.ZC_PROJECT ?? '/mnt/host'}/bin/backup`,
      [uuids.joyent!, '--name', 'x; touch /tmp/pwned'],
      { env: { ZONECOPY_CONFIG: config.path } },
    );
    assert.equal(result.code, 2);
    assert.equal(existsSync('/tmp/pwned'), false);
  });
});
