/**
 * Turns a stored `vmadm get` object into a `vmadm create` payload (smartos.md §4.1): read-only
 * and generated fields stripped, the delegated dataset asked for again, image disks keeping
 * image_uuid/image_size, blank disks their size, nics their MACs. The VM is created stopped; the
 * backed-up streams are received over its fresh datasets afterwards.
 */

const READ_ONLY = [
  'zonename', 'zonepath', 'zoneid', 'zonedid', 'pid', 'zone_state', 'state', 'hvm', 'last_modified', 'boot_timestamp',
  'create_timestamp', 'v', 'server_uuid', 'platform_buildstamp', 'exit_status', 'exit_timestamp', 'init_restarts',
  'zfs_filesystem', 'zpool', 'snapshots', 'datasets', 'transition_to', 'transition_expire', 'missing', 'free_space',
  'type', 'com1', 'com2', 'zlog_mode', 'zlog_name', 'vnc_port', 'indestructible_zoneroot', 'indestructible_delegated',
] as const;

const DISK_READ_ONLY = ['path', 'zfs_filesystem', 'zpool', 'refreservation', 'pci_slot', 'uuid'] as const;

export function createPayload(spec: Record<string, unknown>, options: { uuid: string }): Record<string, unknown> {
  const payload: Record<string, unknown> = { ...spec, uuid: options.uuid, autoboot: false };
  for (const key of READ_ONLY) delete payload[key];
  if (Array.isArray(spec.datasets) && spec.datasets.length > 0) payload.delegate_dataset = true;
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
