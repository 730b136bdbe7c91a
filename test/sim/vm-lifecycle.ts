/** vmadm create / update / delete against real datasets, laid out as SmartOS lays them out. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installedManifest } from './images.js';
import { conflictingVm, CONFLICT_MESSAGE, vrrpRuleError, withVrrpMacs } from './nic-conflicts.js';
import {
  POOL,
  nodeCrypto,
  STATE,
  allRecords,
  readRecord,
  snapshotNames,
  writeRecord,
  zfs,
  zfsGet,
  zfsOk,
  zonepath,
  type VmRecord,
} from './host.js';
import { diskDataset, HVM_BRANDS, OS_BRANDS, type Disk } from './vm-object.js';

export class VmadmError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const BRANDS = new Set([...OS_BRANDS, 'lx', 'kvm', 'bhyve']);
/** What a create payload may carry; anything else is dropped silently, as vmadm does. */
const CREATE_KEYS = new Set([
  'uuid',
  'brand',
  'alias',
  'hostname',
  'image_uuid',
  'quota',
  'max_physical_memory',
  'ram',
  'vcpus',
  'cpu_shares',
  'autoboot',
  'delegate_dataset',
  'disks',
  'flexible_disk_size',
  'nics',
  'resolvers',
  'customer_metadata',
  'internal_metadata',
  'tags',
  'routes',
  'owner_uuid',
  'zfs_root_compression',
  'zfs_data_compression',
]);

function mac(): string {
  return ['92', ...Array.from(nodeCrypto().randomBytes(5)).map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function writeConfigFiles(
  uuid: string,
  data: { customer_metadata?: unknown; internal_metadata?: unknown; tags?: unknown; routes?: unknown },
): void {
  const config = `${zonepath(uuid)}/config`;
  mkdirSync(config, { recursive: true });
  writeFileSync(
    `${config}/metadata.json`,
    JSON.stringify(
      { customer_metadata: data.customer_metadata ?? {}, internal_metadata: data.internal_metadata ?? {} },
      null,
      2,
    ),
  );
  writeFileSync(`${config}/tags.json`, JSON.stringify(data.tags ?? {}, null, 2));
  writeFileSync(`${config}/routes.json`, JSON.stringify(data.routes ?? {}, null, 2));
}

function readConfigFiles(uuid: string): Record<string, Record<string, unknown>> {
  const config = `${zonepath(uuid)}/config`;
  const read = (f: string) => {
    try {
      return JSON.parse(readFileSync(`${config}/${f}`, 'utf8')) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  const metadata = read('metadata.json');
  return {
    customer_metadata: (metadata.customer_metadata as Record<string, unknown>) ?? {},
    internal_metadata: (metadata.internal_metadata as Record<string, unknown>) ?? {},
    tags: read('tags.json'),
    routes: read('routes.json'),
  };
}

export function zonecfgXml(record: VmRecord): string {
  const alias =
    record.alias === undefined
      ? ''
      : `\n  <attr name="alias" type="string" value="${Buffer.from(String(record.alias)).toString('base64')}"/>`;
  const dataset = record.delegated ? `\n  <dataset name="${POOL}/${record.uuid}/data"/>` : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE zone PUBLIC "-//Sun Microsystems Inc//DTD Zones//EN" "file:///usr/share/lib/xml/dtd/zonecfg.dtd.1">\n` +
    `<zone name="${record.uuid}" zonepath="${zonepath(record.uuid)}" autoboot="${record.autoboot}" brand="${record.brand}">${alias}\n` +
    `  <attr name="create-timestamp" type="string" value="${record.create_timestamp}"/>\n  <attr name="vm-version" type="string" value="1"/>${dataset}\n</zone>\n`
  );
}

function saveRecord(record: VmRecord): void {
  record.last_modified = new Date().toISOString().replace(/\.\d+Z$/, '.000Z');
  writeRecord(record);
  writeFileSync(join(STATE, `${record.uuid}.xml`), zonecfgXml(record));
}

export function createVm(input: Record<string, unknown>): string {
  const payload = Object.fromEntries(Object.entries(input).filter(([k]) => CREATE_KEYS.has(k)));
  const brand = String(payload.brand ?? '');
  if (!BRANDS.has(brand))
    throw new VmadmError(
      payload.brand === undefined ? 'Missing required properties: brand' : 'Invalid value(s) for: brand',
    );
  const uuid = typeof payload.uuid === 'string' ? payload.uuid : nodeCrypto().randomUUID();
  if (readRecord(uuid) || zfsOk('list', `${POOL}/${uuid}`)) throw new VmadmError(`VM with UUID ${uuid} already exists`);
  const payloadNics = withVrrpMacs((Array.isArray(payload.nics) ? payload.nics : []) as Array<Record<string, unknown>>);
  const vrrp = vrrpRuleError(payloadNics);
  if (vrrp) throw new VmadmError(vrrp);
  if (
    conflictingVm(
      payloadNics,
      allRecords().filter((r) => r.uuid !== uuid),
    )
  )
    throw new VmadmError(CONFLICT_MESSAGE);
  const hvm = HVM_BRANDS.has(brand);
  const image = typeof payload.image_uuid === 'string' ? payload.image_uuid : undefined;
  if (!hvm) {
    const manifest = image ? installedManifest(image) : undefined;
    const wanted = brand === 'lx' ? 'lx-dataset' : 'zone-dataset';
    if (!manifest || manifest.type !== wanted) throw new VmadmError('Invalid value(s) for: image_uuid');
  }
  const disks = (Array.isArray(payload.disks) ? payload.disks : []) as Array<Record<string, unknown>>;
  disks.forEach((disk, i) => {
    if (disk.image_uuid !== undefined && installedManifest(String(disk.image_uuid))?.type !== 'zvol')
      throw new VmadmError(`Invalid value(s) for: disks.${i}.image_uuid`);
    if (disk.image_uuid === undefined && typeof disk.size !== 'number')
      throw new VmadmError(`Missing required properties: disks.${i}.size`);
  });
  const quota = Number(payload.quota ?? (brand === 'bhyve' ? 1 : 10));
  const root = `${POOL}/${uuid}`;
  if (brand === 'bhyve') {
    zfs('create', '-o', `refquota=${bhyveRefquota(quota)}`, '-o', 'refreservation=none', root);
  } else if (hvm) {
    zfs('create', '-o', `quota=${quota}g`, root);
  } else {
    zfs('clone', '-o', 'devices=off', '-o', `quota=${quota}g`, `${POOL}/${image}@final`, root);
    for (const dir of ['root/tmp', 'root/var/svc']) mkdirSync(`${zonepath(uuid)}/${dir}`, { recursive: true });
  }
  if (payload.delegate_dataset === true)
    zfs(
      'create',
      ...(payload.zfs_data_compression ? ['-o', `compression=${String(payload.zfs_data_compression)}`] : []),
      `${root}/data`,
    );
  const diskRecords: Disk[] = disks.map((disk, i) => {
    const dataset = diskDataset(brand, uuid, i);
    if (disk.image_uuid !== undefined) zfs('clone', `${POOL}/${String(disk.image_uuid)}@final`, dataset);
    else zfs('create', '-V', `${Number(disk.size)}M`, dataset);
    return {
      path: `/dev/zvol/rdsk/${dataset}`,
      boot: disk.boot ?? i === 0,
      model: disk.model ?? 'virtio',
      media: 'disk',
      ...(disk.image_uuid !== undefined
        ? { image_uuid: disk.image_uuid, image_size: installedManifest(String(disk.image_uuid))!.image_size }
        : {}),
      ...(brand === 'bhyve' ? { pci_slot: `0:4:${i}`, uuid: nodeCrypto().randomUUID() } : {}),
      zfs_filesystem: dataset,
    };
  });
  const flexible = payload.flexible_disk_size === undefined ? undefined : Number(payload.flexible_disk_size);
  if (brand === 'bhyve') setQuotaBhyve(root, quota, flexible);
  zfs('create', '-o', 'quota=102400m', '-o', `mountpoint=${zonepath(uuid)}/cores`, `${POOL}/cores/${uuid}`);
  writeConfigFiles(uuid, payload);
  const now = new Date().toISOString();
  const autoboot = payload.autoboot !== false;
  const ram = Number(payload.ram ?? 256);
  const record: VmRecord = {
    uuid,
    brand,
    alias: payload.alias,
    hostname: payload.hostname ?? payload.alias,
    image_uuid: image,
    max_physical_memory: hvm ? ram + (brand === 'bhyve' ? 1280 : 1024) : Number(payload.max_physical_memory ?? 256),
    ram: hvm ? ram : undefined,
    vcpus: hvm ? Number(payload.vcpus ?? 1) : undefined,
    cpu_shares: payload.cpu_shares,
    owner_uuid: payload.owner_uuid,
    resolvers: payload.resolvers ?? [],
    nics: payloadNics.map((nic, i) => ({
      interface: `${brand === 'lx' ? 'eth' : 'net'}${i}`,
      mac: mac(),
      ...nic,
    })),
    delegated: payload.delegate_dataset === true,
    disks: hvm ? diskRecords : undefined,
    ...(brand === 'bhyve' && flexible !== undefined ? { flexible_disk_size: flexible } : {}),
    create_timestamp: now,
    autoboot,
    state: autoboot ? 'running' : 'stopped',
  };
  if (autoboot) boot(record);
  saveRecord(record);
  return uuid;
}

const MIB = 1024 * 1024;
/** VM.js DEFAULT_BHYVE_QUOTA: a bhyve root's refquota is never below 1 GiB. */
const bhyveRefquota = (quota: number) => Math.max(1, quota) * 1024 * MIB;

/**
 * Ported from smartos-live src/vm/node_modules/VM.js setQuotaBhyve (RFD 148, RFD 154): the volumes'
 * refreservation becomes `auto` (volsize plus metadata, clones included); the root's quota and
 * reservation cover its refquota and every volume's refreservation (with flexible_disk_size, MiB:
 * refquota + flexible_disk_size + Σ(refreservation − volsize)), and the root keeps refquota − 1 MiB
 * reserved for itself, so without flexible_disk_size only 1 MiB is left for snapshots.
 */
function setQuotaBhyve(root: string, quota: number, flexible: number | undefined): void {
  const refquota = bhyveRefquota(quota);
  zfs('set', 'refreservation=none', `refquota=${refquota}`, root);
  const volumes = zfs('list', '-Hrp', '-t', 'volume', '-o', 'name,volsize', root)
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t'));
  for (const [name] of volumes) zfs('set', 'refreservation=auto', name!);
  const volsize = volumes.reduce((sum, [, size]) => sum + Number(size), 0);
  const refreservation = volumes.reduce((sum, [name]) => sum + Number(zfsGet(name!, 'refreservation')), 0);
  let total = flexible ? refreservation + refquota + flexible * MIB - volsize : refreservation + refquota;
  if (quota * 1024 * MIB > total) total = quota * 1024 * MIB;
  zfs('set', `quota=${total}`, `reservation=${total}`, `refreservation=${Math.max(0, refquota - MIB)}`, root);
}

function boot(record: VmRecord): void {
  record.state = 'running';
  record.zoneid = Math.floor(Math.random() * 1000) + 1;
  record.pid = Math.floor(Math.random() * 60000) + 1000;
  record.boot_timestamp = new Date().toISOString().replace(/\.\d+Z$/, '.000Z');
}

export function startVm(record: VmRecord): string {
  if (record.state === 'running') return `VM ${record.uuid} is already 'running'`;
  record.autoboot = true;
  boot(record);
  saveRecord(record);
  return `Successfully started VM ${record.uuid}`;
}

export function stopVm(record: VmRecord): string {
  if (record.state !== 'running') return `VM ${record.uuid} is already not 'running' (currently: ${record.state})`;
  record.autoboot = false;
  record.state = 'stopped';
  delete record.zoneid;
  delete record.pid;
  delete record.boot_timestamp;
  saveRecord(record);
  return `Successfully completed stop for VM ${record.uuid}`;
}

export function updateVm(record: VmRecord, changes: Record<string, unknown>): string {
  const files = readConfigFiles(record.uuid);
  // VM.js (update) runs setQuota, so setQuotaBhyve for bhyve, only when quota or flexible_disk_size changes
  if (record.brand === 'bhyve') {
    const root = `${POOL}/${record.uuid}`;
    const oldQuota = Math.round(Number(zfsGet(root, 'refquota')) / (1024 * MIB));
    const quota = changes.quota === undefined ? oldQuota : Number(changes.quota);
    const flexible =
      changes.flexible_disk_size === undefined
        ? (record.flexible_disk_size as number | undefined)
        : Number(changes.flexible_disk_size);
    if (quota !== oldQuota || flexible !== record.flexible_disk_size) {
      setQuotaBhyve(root, quota, flexible);
      if (flexible !== undefined) record.flexible_disk_size = flexible;
    }
  }
  for (const [key, value] of Object.entries(changes)) {
    const set = key.match(/^set_(customer_metadata|internal_metadata|tags|routes)$/);
    const remove = key.match(/^remove_(customer_metadata|internal_metadata|tags|routes)$/);
    if (set) Object.assign(files[set[1]!]!, value as object);
    else if (remove) for (const k of value as string[]) delete files[remove[1]!]![k];
    else if (key === 'alias' || key === 'hostname' || key === 'cpu_shares' || key === 'resolvers') record[key] = value;
    // VM.js keeps qemu_extra_opts (an attr) for KVM only; it takes effect at the next boot
    else if (key === 'qemu_extra_opts' && record.brand === 'kvm') record[key] = value;
    else if (key === 'quota' && record.brand !== 'bhyve')
      zfs(
        'set',
        `${record.brand === 'bhyve' ? 'refquota' : 'quota'}=${Number(value) === 0 ? 'none' : `${Number(value)}g`}`,
        `${POOL}/${record.uuid}`,
      );
  }
  writeConfigFiles(record.uuid, files);
  saveRecord(record);
  return `Successfully updated VM ${record.uuid}`;
}

/** Like cuninstall: the zone root (recursively), cores, KVM volumes, and a non-@final origin snapshot. */
export function deleteVm(record: VmRecord): string {
  const root = `${POOL}/${record.uuid}`;
  const origins = [root, ...((record.disks as Disk[] | undefined) ?? []).map((d) => d.zfs_filesystem)]
    .map((d) => zfsGet(d, 'origin'))
    .filter((o): o is string => o !== undefined && o !== '-' && !o.endsWith('@final'));
  // cores is mounted inside the zone root, so it goes first
  if (zfsGet(`${POOL}/cores/${record.uuid}`, 'name') !== undefined)
    zfs('destroy', '-rf', `${POOL}/cores/${record.uuid}`);
  zfs('destroy', '-rf', root);
  for (const disk of (record.disks as Disk[] | undefined) ?? [])
    if (zfsGet(disk.zfs_filesystem, 'name') !== undefined) zfs('destroy', '-rf', disk.zfs_filesystem);
  for (const origin of origins) zfsOk('destroy', '-f', origin);
  return `Successfully deleted VM ${record.uuid}`;
}

/** `@vmsnap-<name>` snapshots are what vmadm calls the VM's snapshots (VM.js create_snapshot). */
export function vmSnapshots(record: VmRecord): Array<{ name: string }> {
  return snapshotNames(`${POOL}/${record.uuid}`)
    .filter((s) => s.startsWith('vmsnap-'))
    .map((s) => ({ name: s.slice('vmsnap-'.length) }));
}

function checkSnapshotName(name: string | undefined): string {
  // VM.js validSnapshotName: zfs_namecheck's characters, 1 to 64 long
  if (!name || name.length > 64 || /[^a-zA-Z0-9\-_.:%]/.test(name)) throw new VmadmError('Invalid snapshot name');
  return name;
}

/** VM.js create_snapshot: not for kvm, nor for zones with delegated datasets; bhyve's is recursive. */
export function createSnapshot(record: VmRecord, snapname: string | undefined): string {
  const name = checkSnapshotName(snapname);
  if (record.brand === 'kvm') throw new VmadmError('snapshots for kvm VMs currently unsupported');
  if (record.delegated) throw new VmadmError('Cannot currently snapshot zones that have datasets');
  if (vmSnapshots(record).some((s) => s.name === name))
    throw new VmadmError(`snapshot with name "${name}" already exists.`);
  zfs('snapshot', ...(record.brand === 'bhyve' ? ['-r'] : []), `${POOL}/${record.uuid}@vmsnap-${name}`);
  return `Created snapshot ${name} for VM ${record.uuid}`;
}

/**
 * VM.js rollback_snapshot: stop the VM, \`zfs rollback -r\` of the zone root's (bhyve: every dataset's)
 * @vmsnap-<name>, which destroys newer snapshots and fails on a held one, then start it again.
 */
export function rollbackSnapshot(record: VmRecord, snapname: string | undefined): string {
  const name = checkSnapshotName(snapname);
  if (record.brand === 'kvm') throw new VmadmError('snapshots for kvm VMs currently unsupported');
  if (!vmSnapshots(record).some((s) => s.name === name))
    throw new VmadmError(`No snapshot named "${name}" for ${record.uuid}`);
  const root = `${POOL}/${record.uuid}`;
  const snapshots =
    record.brand === 'bhyve'
      ? zfs('list', '-H', '-t', 'snapshot', '-o', 'name', '-r', root)
          .split('\n')
          .filter((s) => s.split('@vmsnap-')[1] === name)
      : [`${root}@vmsnap-${name}`];
  if (record.state === 'running') stopVm(record);
  for (const snapshot of snapshots) {
    try {
      zfs('rollback', '-r', snapshot);
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      throw new VmadmError(`Command failed: zfs rollback -r ${snapshot}\n${stderr}`);
    }
  }
  startVm(record);
  return `Rolled back snapshot ${name} for VM ${record.uuid}`;
}
