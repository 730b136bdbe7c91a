/** `vmadm get`: the stored record plus what SmartOS derives from ZFS and the zone's config files (vmload). */
import { readFileSync } from 'node:fs';
import { POOL, PLATFORM, SERVER_UUID, prefetchZfs, zfsGet, zonepath, type VmRecord } from './host.js';

export const HVM_BRANDS = new Set(['kvm', 'bhyve']);
export const OS_BRANDS = new Set(['joyent', 'joyent-minimal', 'builder']);

export interface Disk {
  [key: string]: unknown;
  path: string;
  zfs_filesystem: string;
}

export function diskDataset(brand: string, uuid: string, index: number): string {
  return brand === 'kvm' ? `${POOL}/${uuid}-disk${index}` : `${POOL}/${uuid}/disk${index}`;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const mib = (bytes: string | undefined) => (bytes === undefined ? undefined : Math.round(Number(bytes) / 1048576));

/** Every ZFS value vmObject reads for these VMs, in one zfs call; with `snapshots`, the one VM's snapshots too. */
export function prefetchVmObjects(records: readonly VmRecord[], snapshots = false): void {
  const datasets = records.flatMap((r) => [
    `${POOL}/${r.uuid}`,
    ...((r.disks as Disk[] | undefined) ?? []).map((d) => d.zfs_filesystem),
  ]);
  prefetchZfs(
    datasets,
    ['quota', 'refquota', 'recordsize', 'volsize', 'compression', 'refreservation', 'volblocksize'],
    snapshots ? `${POOL}/${records[0]!.uuid}` : undefined,
  );
}

export function vmObject(record: VmRecord): Record<string, unknown> {
  const uuid = record.uuid;
  const root = `${POOL}/${uuid}`;
  const config = `${zonepath(uuid)}/config`;
  const metadata = readJson(`${config}/metadata.json`);
  const hvm = HVM_BRANDS.has(record.brand);
  const quotaBytes = zfsGet(root, record.brand === 'bhyve' ? 'refquota' : 'quota');
  const running = record.state === 'running';
  const disks = ((record.disks as Disk[] | undefined) ?? []).map((disk) => ({
    ...disk,
    zpool: POOL,
    size: mib(zfsGet(disk.zfs_filesystem, 'volsize')),
    compression: zfsGet(disk.zfs_filesystem, 'compression'),
    refreservation: mib(zfsGet(disk.zfs_filesystem, 'refreservation')),
    block_size: Number(zfsGet(disk.zfs_filesystem, 'volblocksize')),
  }));
  const object: Record<string, unknown> = {
    zonename: uuid,
    autoboot: record.autoboot,
    brand: record.brand,
    limit_priv: hvm ? 'default,-file_link_any,-net_access,-proc_fork,-proc_info,-proc_session' : 'default',
    v: 1,
    create_timestamp: record.create_timestamp,
    ...(record.image_uuid ? { image_uuid: record.image_uuid } : {}),
    cpu_shares: record.cpu_shares ?? 100,
    max_lwps: 2000,
    max_msg_ids: 4096,
    max_sem_ids: 4096,
    max_shm_ids: 4096,
    max_shm_memory: record.max_physical_memory,
    zfs_io_priority: 100,
    max_physical_memory: record.max_physical_memory,
    max_locked_memory: record.max_physical_memory,
    max_swap: record.max_physical_memory,
    billing_id: '00000000-0000-0000-0000-000000000000',
    owner_uuid: record.owner_uuid ?? '00000000-0000-0000-0000-000000000000',
    ...(hvm ? { ram: record.ram, vcpus: record.vcpus ?? 1 } : { tmpfs: record.max_physical_memory }),
    ...(record.hostname ? { hostname: record.hostname } : {}),
    ...(hvm ? {} : { dns_domain: 'local' }),
    resolvers: record.resolvers ?? [],
    ...(record.alias !== undefined ? { alias: record.alias } : {}),
    ...(record.delegated ? { datasets: [`${root}/data`] } : {}),
    ...(hvm ? { disks } : {}),
    nics: record.nics ?? [],
    uuid,
    zone_state: running ? 'running' : 'installed',
    zonepath: zonepath(uuid),
    hvm,
    ...(running ? { zoneid: record.zoneid, pid: record.pid, boot_timestamp: record.boot_timestamp } : {}),
    last_modified: record.last_modified,
    firewall_enabled: false,
    server_uuid: SERVER_UUID,
    platform_buildstamp: PLATFORM,
    state: record.state,
    customer_metadata: metadata.customer_metadata ?? {},
    internal_metadata: metadata.internal_metadata ?? {},
    routes: readJson(`${config}/routes.json`),
    tags: readJson(`${config}/tags.json`),
    ...(record.flexible_disk_size !== undefined ? { flexible_disk_size: record.flexible_disk_size } : {}),
    ...(record.brand === 'kvm' && typeof record.qemu_extra_opts === 'string'
      ? { qemu_extra_opts: record.qemu_extra_opts }
      : {}),
    quota: quotaBytes === undefined || quotaBytes === '0' ? 0 : Math.round(Number(quotaBytes) / 1073741824),
    ...(record.brand !== 'bhyve' ? { zfs_root_recsize: Number(zfsGet(root, 'recordsize') ?? 131072) } : {}),
    zfs_filesystem: root,
    zpool: POOL,
    snapshots: [],
  };
  return object;
}

/** The fake fields `vmadm list` and `lookup -j` add: `type` (truncated, so bhyve is BHYV) and `ram`. */
export function withFakeFields(object: Record<string, unknown>): Record<string, unknown> {
  const brand = String(object.brand);
  const type = OS_BRANDS.has(brand) ? 'OS' : brand === 'lx' ? 'LX' : brand === 'kvm' ? 'KVM' : 'BHYVE'.slice(0, 4);
  return { ...object, type, ram: object.hvm ? object.ram : object.max_physical_memory };
}
