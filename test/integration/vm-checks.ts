/** What a restore must bring back, measured on the guest: data digests per dataset and the spec's essentials. */
import assert from 'node:assert/strict';
import { run, sh } from './harness.js';

export interface Spec {
  uuid: string;
  brand: string;
  alias?: string;
  quota: number;
  zfs_filesystem: string;
  datasets?: string[];
  disks?: Array<{ zfs_filesystem: string; size: number; image_uuid?: string; refreservation?: number }>;
  customer_metadata: Record<string, string>;
  internal_metadata: Record<string, string>;
  tags: Record<string, string>;
  nics: Array<{ mac: string }>;
}

/** One digest per dataset of a VM: its files (this file system only) or its volume's bytes. */
export async function fingerprint(uuid: string, env: NodeJS.ProcessEnv = {}): Promise<Record<string, string>> {
  const vm = await run('vmadm', ['get', uuid], { env });
  assert.equal(vm.code, 0, vm.stderr);
  const spec = JSON.parse(vm.stdout) as Spec;
  const digests: Record<string, string> = {};
  const role = (i: number, kind: string) => `${kind}${i}`;
  const fsDigest = (dataset: string) =>
    withMounted(dataset, () =>
      sh(
        `cd "$(zfs get -H -o value mountpoint ${dataset})" && find . -xdev -type f ! -name '*.lock' -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16`,
      ),
    );
  const volDigest = (dataset: string) => sh(`udevadm settle; sha256sum /dev/zvol/${dataset} | cut -c1-16`);
  digests.root = (await fsDigest(spec.zfs_filesystem)).trim();
  for (const [i, d] of (spec.datasets ?? []).entries()) digests[role(i, 'delegated')] = (await fsDigest(d)).trim();
  for (const [i, d] of (spec.disks ?? []).entries())
    digests[role(i, 'disk')] = (await volDigest(d.zfs_filesystem)).trim();
  return digests;
}

/**
 * Runs `read` with `dataset` mounted in the global zone: a delegated dataset restored as vmadm makes
 * it (zoned=on, unmounted) is mounted for the read and put back as it was.
 */
export async function withMounted<T>(dataset: string, read: () => Promise<T>): Promise<T> {
  const [zoned, mounted] = (await sh(`zfs get -H -o value zoned,mounted ${dataset}`)).trim().split('\n');
  if (mounted === 'yes') return read();
  await sh(`zfs set zoned=off ${dataset} && zfs mount ${dataset}`);
  try {
    return await read();
  } finally {
    await sh(`zfs unmount ${dataset}${zoned === 'on' ? ` && zfs set zoned=on ${dataset}` : ''}`);
  }
}

export async function specOf(uuid: string, env: NodeJS.ProcessEnv = {}): Promise<Spec> {
  return JSON.parse((await run('vmadm', ['get', uuid], { env })).stdout) as Spec;
}

/** The parts of a spec that a restore must bring back. */
export function essentials(spec: Spec) {
  return {
    brand: spec.brand,
    alias: spec.alias,
    quota: spec.quota,
    delegated: spec.datasets?.length ?? 0,
    disks: (spec.disks ?? []).map((d) => [d.size, d.image_uuid ?? null]),
    customer_metadata: spec.customer_metadata,
    internal_metadata: spec.internal_metadata,
    tags: spec.tags,
    macs: spec.nics.map((n) => n.mac),
  };
}

export async function change(uuid: string): Promise<void> {
  const spec = await specOf(uuid);
  const mount = (await sh(`zfs get -H -o value mountpoint ${spec.zfs_filesystem}`)).trim();
  await sh(
    `head -c 300K /dev/urandom > ${mount}/root-changed.bin 2>/dev/null || true; mkdir -p ${mount}/root && head -c 200K /dev/urandom > ${mount}/root/after-first.bin`,
  );
  for (const d of spec.datasets ?? [])
    await sh(`head -c 400K /dev/urandom > "$(zfs get -H -o value mountpoint ${d})/after-first.bin"`);
  for (const d of spec.disks ?? [])
    await sh(`head -c 1M /dev/urandom | dd of=/dev/zvol/${d.zfs_filesystem} bs=1M seek=5 conv=notrunc status=none`);
}
