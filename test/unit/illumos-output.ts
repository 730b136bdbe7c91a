/**
 * What a SmartOS global zone prints, for the parsers' tests: `zfs receive -v`, `zfs holds -H` and
 * `zfs send -nP` as illumos-gate's usr/src/cmd/zfs/zfs_main.c and libzfs_sendrecv.c write them
 * (sizes through nicenum.c: `312B`, `1.50GB`, `15.0GB`, `512KB`, `1GB` for an exact power), and
 * `vmadm get` objects of each brand with the fields smartos-live's src/vm/tests test data carries.
 * Written here, not copied: the values are made up, the shapes are the platform's.
 */

export const RECEIVE_V = {
  full: 'receiving full stream of zones/0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6@daily-1 into backup/zones/0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6@daily-1\nreceived 1.50GB stream in 37 seconds (41.5MB/sec)\n',
  tiny: 'receiving incremental stream of zones/a@daily-2 into backup/zones/a@daily-2\nreceived 312B stream in 1 seconds (312B/sec)\n',
  exactPower: 'received 1GB stream in 20 seconds (51.2MB/sec)\n',
  threeDigits: 'received 15.0GB stream in 301 seconds (51.0MB/sec)\n',
  kilo: 'received 512KB stream in 1 seconds (512KB/sec)\n',
};

/** One `zfs receive -v` per stream of a series, as the backup host's shell printed them in turn. */
export const RECEIVE_V_SERIES = [
  'receiving incremental stream of zones/a@daily-2 into backup/zones/a@daily-2',
  'received 312B stream in 1 seconds (312B/sec)',
  'receiving incremental stream of zones/a/data@daily-2 into backup/zones/a/data@daily-2',
  'received 2.25MB stream in 1 seconds (2.25MB/sec)',
  'receiving incremental stream of zones/a-disk0@daily-2 into backup/zones/a-disk0@daily-2',
  'received 1GB stream in 12 seconds (85.3MB/sec)',
  '',
].join('\n');

/** `zfs send -nP` (and -nvP's stdout part): one line per stream, the total last. */
export const SEND_NP = {
  full: 'full\tzones/a@daily-1\t1610612736\nsize\t1610612736\n',
  incremental: 'incremental\tdaily-1\tzones/a@daily-2\t4212736\nsize\t4212736\n',
};

const UUID = {
  joyent: '0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6',
  lx: '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44',
  kvm: 'c1f4e8a2-7b3d-4c5e-9a10-3d2e1f0a9b87',
  bhyve: '9e8d7c6b-5a49-4382-a170-ffeeddccbbaa',
};
const IMAGE = 'e75c9d82-3156-11e8-a7f6-0f1ad5a1bdc2';
const OWNER = '930896af-bf8c-48d4-885c-6573a94b1853';
const SERVER = '44454c4c-5000-104d-8037-b7c04f5a5131';

const common = (brand: keyof typeof UUID) => ({
  zonename: UUID[brand],
  autoboot: true,
  brand,
  limit_priv: brand === 'lx' ? 'default,-file_link_any,-net_access,-proc_fork,-proc_info,-proc_session' : 'default',
  v: 1,
  create_timestamp: '2026-03-02T10:14:07.112Z',
  cpu_shares: 100,
  zfs_io_priority: 100,
  max_lwps: 2000,
  max_physical_memory: 1024,
  max_locked_memory: 1024,
  max_swap: 2048,
  billing_id: '00000000-0000-0000-0000-000000000000',
  owner_uuid: OWNER,
  tmpfs: 1024,
  dns_domain: 'local',
  resolvers: ['8.8.8.8', '8.8.4.4'],
  alias: `${brand}-fixture`,
  hostname: `${brand}-fixture`,
  nics: [
    {
      interface: 'net0',
      mac: '90:b8:d0:4f:2a:11',
      nic_tag: 'admin',
      ip: '10.0.0.21',
      netmask: '255.255.255.0',
      gateway: '10.0.0.1',
      primary: true,
      model: brand === 'kvm' || brand === 'bhyve' ? 'virtio' : undefined,
    },
  ],
  uuid: UUID[brand],
  zone_state: 'running',
  zonepath: `/zones/${UUID[brand]}`,
  zoneid: 12,
  last_modified: '2026-11-29T02:00:11.000Z',
  firewall_enabled: false,
  server_uuid: SERVER,
  platform_buildstamp: '20261112T000000Z',
  state: 'running',
  boot_timestamp: '2026-11-20T08:01:40.000Z',
  pid: 4312,
  customer_metadata: { root_authorized_keys: 'ssh-ed25519 AAAAC3Nza… admin' },
  internal_metadata: {},
  tags: {},
  quota: 20,
  zfs_root_recsize: 131072,
  zfs_filesystem: `zones/${UUID[brand]}`,
  zpool: 'zones',
  snapshots: [],
});

/** `vmadm get <uuid>` of each brand. */
export const VMADM_GET = {
  joyent: {
    ...common('joyent'),
    image_uuid: IMAGE,
    cpu_cap: 100,
    delegate_dataset: true,
    datasets: [`zones/${UUID.joyent}/data`],
    internal_metadata: { smartcopy_exclude: '' },
  },
  lx: {
    ...common('lx'),
    image_uuid: IMAGE,
    kernel_version: '4.3.0',
    init_name: '/sbin/init',
    cpu_cap: 200,
  },
  kvm: {
    ...common('kvm'),
    ram: 1024,
    vcpus: 1,
    cpu_type: 'qemu64',
    vnc_port: 0,
    quota: 10,
    disks: [
      {
        path: `/dev/zvol/rdsk/zones/${UUID.kvm}-disk0`,
        boot: true,
        model: 'virtio',
        media: 'disk',
        image_uuid: IMAGE,
        image_size: 10240,
        zfs_filesystem: `zones/${UUID.kvm}-disk0`,
        zpool: 'zones',
        size: 10240,
        compression: 'off',
        refreservation: 10240,
        block_size: 8192,
      },
      {
        path: `/dev/zvol/rdsk/zones/${UUID.kvm}-disk1`,
        boot: false,
        model: 'virtio',
        media: 'disk',
        zfs_filesystem: `zones/${UUID.kvm}-disk1`,
        zpool: 'zones',
        size: 20480,
        compression: 'lz4',
        refreservation: 20480,
        block_size: 8192,
      },
    ],
  },
  bhyve: {
    ...common('bhyve'),
    ram: 2048,
    vcpus: 2,
    bootrom: 'uefi',
    flexible_disk_size: 40960,
    quota: 41,
    disks: [
      {
        path: `/dev/zvol/rdsk/zones/${UUID.bhyve}/disk0`,
        boot: true,
        model: 'virtio',
        media: 'disk',
        image_uuid: IMAGE,
        image_size: 10240,
        zfs_filesystem: `zones/${UUID.bhyve}/disk0`,
        zpool: 'zones',
        size: 10240,
        compression: 'off',
        refreservation: 10240,
        block_size: 8192,
      },
      {
        path: `/dev/zvol/rdsk/zones/${UUID.bhyve}/disk1`,
        boot: false,
        model: 'virtio',
        media: 'disk',
        zfs_filesystem: `zones/${UUID.bhyve}/disk1`,
        zpool: 'zones',
        size: 20480,
        compression: 'lz4',
        refreservation: 20480,
        block_size: 8192,
      },
    ],
  },
};

export const FIXTURE_UUID = UUID;
