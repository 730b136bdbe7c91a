/**
 * One VM of each brand, created through the simulated vmadm as an operator would, with some data
 * written into each. `node build/test/sim/fixtures.js create [joyent lx kvm bhyve]` (idempotent).
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

export const IMAGES = {
  base: 'e44ed3e0-910b-11ed-a5d4-00151714048c',
  ubuntu: '2f1dc911-6401-4fa4-8e9d-67ea2e39c271',
  debian: 'a7a1c2c4-7a4e-4b6b-9ef5-1a8e2b0c4d11',
};

export const FIXTURE_VMS: Record<string, Record<string, unknown> & { uuid: string; brand: string }> = {
  joyent: {
    uuid: '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44',
    brand: 'joyent',
    alias: 'db01',
    hostname: 'db01',
    image_uuid: IMAGES.base,
    quota: 1,
    max_physical_memory: 512,
    delegate_dataset: true,
    zfs_data_compression: 'lz4',
    nics: [{ nic_tag: 'admin', ip: '192.168.1.41', netmask: '255.255.255.0', gateway: '192.168.1.1', primary: true }],
    customer_metadata: { root_authorized_keys: 'ssh-ed25519 AAAA... admin@example' },
    internal_metadata: {},
    tags: { role: 'postgres' },
  },
  lx: {
    uuid: 'b1f3a7d2-5c1e-4d8f-a0e4-7e2c9d6f3a10',
    brand: 'lx',
    alias: 'ubuntu-lx',
    image_uuid: IMAGES.ubuntu,
    quota: 1,
    max_physical_memory: 256,
    kernel_version: '4.3.0',
    nics: [{ nic_tag: 'external', ip: '10.0.5.23', netmask: '255.255.255.0', primary: true }],
  },
  kvm: {
    uuid: '3c9d1f2e-7a4b-4c5d-8e6f-0a1b2c3d4e5f',
    brand: 'kvm',
    alias: 'kvm01',
    ram: 256,
    vcpus: 1,
    disks: [
      { image_uuid: IMAGES.debian, boot: true, model: 'virtio' },
      { size: 32, model: 'virtio' },
    ],
  },
  bhyve: {
    uuid: '0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6',
    brand: 'bhyve',
    alias: 'debian12',
    ram: 256,
    vcpus: 1,
    quota: 1,
    // disk0 (the 64 MiB image) + disk1 (32 MiB) + 64 MiB of headroom for their snapshots, as on SmartOS (VM.js setQuotaBhyve)
    flexible_disk_size: 160,
    disks: [
      { image_uuid: IMAGES.debian, boot: true, model: 'virtio' },
      { size: 32, model: 'virtio' },
    ],
  },
};

const sh = (script: string) =>
  execFileSync('bash', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

/** Imports what the fixtures need and creates them; writes files into zone roots and bytes into volumes. */
export function createFixtures(names: readonly string[]): string[] {
  const created: string[] = [];
  for (const name of names) {
    const vm = FIXTURE_VMS[name];
    if (!vm) throw new Error(`unknown fixture ${name}; known: ${Object.keys(FIXTURE_VMS).join(', ')}`);
    if (sh(`vmadm lookup uuid=${vm.uuid}`).trim()) continue;
    const images = [
      vm.image_uuid,
      ...((vm.disks as Array<{ image_uuid?: string }> | undefined) ?? []).map((d) => d.image_uuid),
    ].filter(Boolean);
    for (const image of images) sh(`imgadm import ${String(image)} >/dev/null`);
    execFileSync('vmadm', ['create'], { input: JSON.stringify(vm), stdio: ['pipe', 'inherit', 'pipe'] });
    const root = `/zones/${vm.uuid}`;
    if (vm.brand === 'kvm' || vm.brand === 'bhyve') {
      const disk1 = vm.brand === 'kvm' ? `zones/${vm.uuid}-disk1` : `zones/${vm.uuid}/disk1`;
      sh(
        `udevadm settle; for i in $(seq 50); do [ -e /dev/zvol/${disk1} ] && break; sleep 0.1; done; head -c 1M /dev/urandom | dd of=/dev/zvol/${disk1} bs=1M seek=2 conv=notrunc status=none`,
      );
    } else {
      sh(
        `mkdir -p ${root}/root/var/db && head -c 262144 /dev/urandom > ${root}/root/var/db/app.bin && echo ${name} > ${root}/root/etc/hostname`,
      );
      if (vm.delegate_dataset) sh(`head -c 524288 /dev/urandom > ${root}/data/db.bin`);
    }
    created.push(vm.uuid);
  }
  return created;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [command, ...names] = process.argv.slice(2);
  if (command !== 'create') {
    process.stderr.write('usage: fixtures.js create [joyent lx kvm bhyve]\n');
    process.exit(2);
  }
  const uuids = createFixtures(names.length ? names : Object.keys(FIXTURE_VMS));
  process.stdout.write(uuids.map((u) => `${u}\n`).join(''));
}
