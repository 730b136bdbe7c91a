/**
 * Turns a stored `vmadm get` object into a `vmadm create` payload (smartos.md §4.1): read-only
 * and generated fields stripped, the delegated dataset asked for again, image disks keeping
 * image_uuid/image_size, blank disks their size, nics their MACs (or, for a copy beside the
 * original, new ones from vmadm, no static IPs, no VRRP, no allowed_ips). The VM is created stopped; the backed-up
 * streams are received over its fresh datasets afterwards.
 */

const READ_ONLY = [
  'zonename',
  'zonepath',
  'zoneid',
  'zonedid',
  'pid',
  'zone_state',
  'state',
  'hvm',
  'last_modified',
  'boot_timestamp',
  'create_timestamp',
  'v',
  'server_uuid',
  'platform_buildstamp',
  'exit_status',
  'exit_timestamp',
  'init_restarts',
  'zfs_filesystem',
  'zpool',
  'snapshots',
  'datasets',
  'transition_to',
  'transition_expire',
  'missing',
  'free_space',
  'type',
  'com1',
  'com2',
  'zlog_mode',
  'zlog_name',
  'vnc_port',
  'indestructible_zoneroot',
  'indestructible_delegated',
] as const;

const DISK_READ_ONLY = ['path', 'zfs_filesystem', 'zpool', 'refreservation', 'pci_slot', 'uuid'] as const;

/** What a copy's nic lost so that vmadm accepts it beside the original. */
export interface NicChange {
  interface: string;
  oldMac: string;
  /** Undefined until vmadm has chosen it. */
  newMac?: string;
  droppedIps: string[];
  /** The VRRP router ID the original keeps (vmadm refuses a VRID another VM has, and derives the MAC from it). */
  droppedVrid?: number;
  /** Addresses the nic was allowed to send from besides its own: the original's, so the copy loses them. */
  droppedAllowedIps?: string[];
}

type Nic = Record<string, unknown>;

const AUTOMATIC = new Set(['dhcp', 'addrconf']);

/** A nic's static addresses, as `ips` spells them (with prefix) or else as `ip`, once each. */
function staticIps(nic: Nic): string[] {
  const found: string[] = [];
  const bare = (a: string) => a.split('/')[0]!;
  for (const address of [
    ...(Array.isArray(nic.ips) ? (nic.ips as unknown[]) : []),
    ...(nic.ip !== undefined ? [nic.ip] : []),
  ].map(String)) {
    if (!AUTOMATIC.has(address) && !found.some((f) => bare(f) === bare(address))) found.push(address);
  }
  return found;
}

/**
 * vmadm create refuses a MAC, IP or VRRP VRID another VM has (VM.js lookupConflicts), so a copy's
 * nics leave the MAC to vmadm and drop static addresses with their netmask and gateways (dhcp
 * stays), a VRRP nic becomes a plain one (its VRID and primary IP are the original's, and the
 * primary IP would no longer be the copy's own: validateNics), and allowed_ips go with the addresses.
 */
function copyNic(nic: Nic): Nic {
  const copy: Nic = { ...nic };
  for (const key of ['mac', 'vrrp_vrid', 'vrrp_primary_ip', 'allowed_ips']) delete copy[key];
  if (staticIps(nic).length === 0) return copy;
  for (const key of ['ip', 'netmask', 'gateway', 'gateways']) delete copy[key];
  const automatic = [
    ...(Array.isArray(nic.ips) ? (nic.ips as unknown[]) : []),
    ...(nic.ip !== undefined ? [nic.ip] : []),
  ]
    .map(String)
    .filter((a) => AUTOMATIC.has(a));
  delete copy.ips;
  if (automatic.includes('dhcp')) copy.ip = 'dhcp';
  if (automatic.length > 0) copy.ips = [...new Set(automatic)];
  return copy;
}

/** Old and new MAC and the dropped addresses of each nic of a copy, in the spec's order. */
export function nicChanges(specNics: readonly Nic[], createdNics: readonly Nic[] | undefined): NicChange[] {
  return specNics.map((nic, i) => ({
    interface: String(nic.interface ?? `net${i}`),
    oldMac: String(nic.mac ?? ''),
    ...(createdNics?.[i]?.mac !== undefined ? { newMac: String(createdNics[i]?.mac) } : {}),
    droppedIps: staticIps(nic),
    ...(nic.vrrp_vrid !== undefined && { droppedVrid: Number(nic.vrrp_vrid) }),
    ...(Array.isArray(nic.allowed_ips) &&
      nic.allowed_ips.length > 0 && { droppedAllowedIps: (nic.allowed_ips as unknown[]).map(String) }),
  }));
}

export function createPayload(
  spec: Record<string, unknown>,
  options: { uuid: string; copy?: boolean },
): Record<string, unknown> {
  const payload: Record<string, unknown> = { ...spec, uuid: options.uuid, autoboot: false };
  for (const key of READ_ONLY) delete payload[key];
  if (Array.isArray(spec.datasets) && spec.datasets.length > 0) payload.delegate_dataset = true;
  if (options.copy && Array.isArray(spec.nics)) payload.nics = (spec.nics as Nic[]).map(copyNic);
  if (spec.hvm !== true) delete payload.ram; // a fake field for zones; max_physical_memory carries it
  if (Array.isArray(spec.disks)) {
    payload.disks = (spec.disks as Array<Record<string, unknown>>).map((disk) => {
      const copy: Record<string, unknown> = { ...disk };
      for (const key of DISK_READ_ONLY) delete copy[key];
      if (copy.image_uuid !== undefined) {
        delete copy.size;
        delete copy.block_size;
      }
      return copy;
    });
  }
  return payload;
}
