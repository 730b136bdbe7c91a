/**
 * Restore drills on real ZFS: back up every brand twice (data changes in between), destroy the
 * VMs, restore them from the latest and from the older backup set, and compare every file's
 * checksum, every volume's bytes and the VM spec with what the source had. Also onto a second
 * simulated SmartOS host that lacks the image, and `status` / `check` along the way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { releaseHolds, resetHosts, run, sh, writeConfig, zonecopy, PROJECT, type TestConfig } from './harness.js';

const BRANDS = ['joyent', 'lx', 'kvm', 'bhyve'] as const;

interface Spec {
  uuid: string;
  brand: string;
  alias?: string;
  quota: number;
  zfs_filesystem: string;
  datasets?: string[];
  disks?: Array<{ zfs_filesystem: string; size: number; image_uuid?: string }>;
  customer_metadata: Record<string, string>;
  internal_metadata: Record<string, string>;
  tags: Record<string, string>;
  nics: Array<{ mac: string }>;
}

/** One digest per dataset of a VM: its files (this file system only) or its volume's bytes. */
async function fingerprint(uuid: string, env: NodeJS.ProcessEnv = {}): Promise<Record<string, string>> {
  const vm = await run('vmadm', ['get', uuid], { env });
  assert.equal(vm.code, 0, vm.stderr);
  const spec = JSON.parse(vm.stdout) as Spec;
  const digests: Record<string, string> = {};
  const role = (i: number, kind: string) => `${kind}${i}`;
  const fsDigest = (dataset: string) => sh(`cd "$(zfs get -H -o value mountpoint ${dataset})" && find . -xdev -type f ! -name '*.lock' -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16`);
  const volDigest = (dataset: string) => sh(`udevadm settle; sha256sum /dev/zvol/${dataset} | cut -c1-16`);
  digests.root = (await fsDigest(spec.zfs_filesystem)).trim();
  for (const [i, d] of (spec.datasets ?? []).entries()) digests[role(i, 'delegated')] = (await fsDigest(d)).trim();
  for (const [i, d] of (spec.disks ?? []).entries()) digests[role(i, 'disk')] = (await volDigest(d.zfs_filesystem)).trim();
  return digests;
}

async function specOf(uuid: string, env: NodeJS.ProcessEnv = {}): Promise<Spec> {
  return JSON.parse((await run('vmadm', ['get', uuid], { env })).stdout) as Spec;
}

/** The parts of a spec that a restore must bring back. */
function essentials(spec: Spec) {
  return {
    brand: spec.brand, alias: spec.alias, quota: spec.quota, delegated: spec.datasets?.length ?? 0,
    disks: (spec.disks ?? []).map((d) => [d.size, d.image_uuid ?? null]),
    customer_metadata: spec.customer_metadata, internal_metadata: spec.internal_metadata, tags: spec.tags,
    macs: spec.nics.map((n) => n.mac),
  };
}

async function change(uuid: string): Promise<void> {
  const spec = await specOf(uuid);
  const mount = (await sh(`zfs get -H -o value mountpoint ${spec.zfs_filesystem}`)).trim();
  await sh(`head -c 300K /dev/urandom > ${mount}/root-changed.bin 2>/dev/null || true; mkdir -p ${mount}/root && head -c 200K /dev/urandom > ${mount}/root/after-first.bin`);
  for (const d of spec.datasets ?? []) await sh(`head -c 400K /dev/urandom > "$(zfs get -H -o value mountpoint ${d})/after-first.bin"`);
  for (const d of spec.disks ?? []) await sh(`head -c 1M /dev/urandom | dd of=/dev/zvol/${d.zfs_filesystem} bs=1M seek=5 conv=notrunc status=none`);
}

describe('restore drills', () => {
  let config: TestConfig;
  const uuids: Record<string, string> = {};
  const first: Record<string, Record<string, string>> = {};
  const second: Record<string, Record<string, string>> = {};
  const specs: Record<string, Spec> = {};
  let backupHostBefore = '';
  const timings: string[] = [];

  before(async () => {
    await resetHosts();
    await createFixtures([...BRANDS]);
    config = writeConfig();
    await sh(`zfs create zones/${await fixtureUuid('joyent')}/data/pgsql && echo rows > /zones/${await fixtureUuid('joyent')}/data/pgsql/table`);
    for (const brand of BRANDS) {
      const uuid = (uuids[brand] = await fixtureUuid(brand));
      let result = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'b1'], config);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      first[brand] = await fingerprint(uuid);
      await change(uuid);
      result = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'b2'], config);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      second[brand] = await fingerprint(uuid);
      specs[brand] = await specOf(uuid);
      assert.notDeepEqual(first[brand], second[brand], `${brand}: the data changed between the backups`);
    }
    backupHostBefore = await sh('zfs list -Hp -t all -o name,guid,used -r backup; ls -lR /var/zonecopy');
  });

  it('status shows every dataset with a healthy chain and check says OK', async () => {
    const status = await zonecopy(['status', ...Object.values(uuids), '--json'], config);
    assert.equal(status.code, 0, status.stderr + status.stdout);
    const vms = JSON.parse(status.stdout) as Array<{ uuid: string; datasets: Array<{ chain: string; newestCommon: { name: string } }> }>;
    assert.equal(vms.length, 4);
    for (const vm of vms) for (const d of vm.datasets) assert.deepEqual([d.chain, d.newestCommon.name], ['ok', 'daily-b2']);
    const check = await zonecopy(['check', '--warn', '1h', '--crit', '2h'], config);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /^ZONECOPY OK - 4 VM\(s\) backed up/);
    const critical = await zonecopy(['check', '--warn', '1s', '--crit', '2s'], config);
    assert.equal(critical.code, 2);
    assert.match(critical.stdout, /^ZONECOPY CRITICAL - /);
  });

  for (const brand of BRANDS) {
    it(`${brand}: destroyed, then restored from the latest and from the older backup set, bit for bit`, async () => {
      const uuid = uuids[brand]!;
      const held = await run('vmadm', ['delete', uuid]);
      assert.notEqual(held.code, 0, 'zonecopy holds its newest common snapshot, so the VM cannot be deleted by accident');
      await releaseHolds(uuid);
      const deleted = await run('vmadm', ['delete', uuid]);
      assert.equal(deleted.code, 0, deleted.stderr);
      let started = Date.now();
      let result = await zonecopy(['restore', uuid], config);
      timings.push(`${brand} latest ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.match(result.stdout, /backup set daily-b2/);
      assert.deepEqual(await fingerprint(uuid), second[brand]);
      assert.deepEqual(essentials(await specOf(uuid)), essentials(specs[brand]!));
      if (brand === 'joyent') assert.equal((await sh(`cat /zones/${uuid}/data/pgsql/table`)).trim(), 'rows', 'a child of the delegated dataset came back');

      const refused = await zonecopy(['restore', uuid, '--snapshot', 'daily-b1'], config);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /exists on this host.*--force/);

      started = Date.now();
      result = await zonecopy(['restore', uuid, '--snapshot', 'daily-b1', '--force', '--start'], config);
      timings.push(`${brand} older ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.deepEqual(await fingerprint(uuid), first[brand]);
      assert.equal((await specOf(uuid)).brand, brand);
      assert.match(await sh(`vmadm list -p -o state uuid=${uuid}`), /running/);
    });
  }

  it('a copy under a new UUID sits beside the original', async () => {
    const uuid = uuids.joyent!;
    const result = await zonecopy(['restore', uuid, '--new-uuid', '--json'], config);
    assert.equal(result.code, 0, result.stderr);
    const copy = (JSON.parse(result.stdout) as { uuid: string }).uuid;
    assert.notEqual(copy, uuid);
    assert.deepEqual(await fingerprint(copy), second.joyent);
    assert.equal((await run('vmadm', ['get', uuid])).code, 0);
  });

  it('restores onto a second SmartOS host that lacks the image, installing it from the backup host', async () => {
    await sh('zpool destroy -f zones2 2>/dev/null; zpool create -f -O mountpoint=/zones2 zones2 /dev/disk/by-id/virtio-zc-spare && zfs create zones2/cores; rm -rf /etc/zones2 /var/imgadm2');
    const env = { SIM_POOL: 'zones2', SIM_STATE: '/etc/zones2', SIM_IMGADM_DIR: '/var/imgadm2' };
    const uuid = uuids.lx!;
    const image = (specs.lx as Spec & { image_uuid: string }).image_uuid;
    assert.equal((await run('imgadm', ['get', image], { env })).code, 3, 'the second host starts without the image');
    const started = Date.now();
    const result = await run(`${PROJECT}/bin/zonecopy`, ['restore', uuid], { env: { ...env, ZONECOPY_CONFIG: config.path } });
    timings.push(`lx onto a second host ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /images installed from the backup host/);
    assert.equal(await sh(`zfs get -Hp -o value guid zones2/${image}@final`), await sh(`zfs get -Hp -o value guid zones/${image}@final`));
    assert.deepEqual(await fingerprint(uuid, env), second.lx);
    process.stdout.write(`# restore times: ${timings.join(', ')}\n`);
  });

  it('restoring never changed anything on the backup host', async () => {
    assert.equal(await sh('zfs list -Hp -t all -o name,guid,used -r backup; ls -lR /var/zonecopy'), backupHostBefore);
  });
});
