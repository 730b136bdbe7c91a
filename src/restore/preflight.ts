import type { Host } from '../host/host.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { poolOf } from '../zfs/names.js';
import { RestoreError } from './restore-error.js';

/** The brands whose dataset layout zonecopy restores (OS zones, LX, KVM's sibling volumes, bhyve's children). */
export const RESTORABLE_BRANDS: readonly string[] = ['joyent', 'joyent-minimal', 'lx', 'kvm', 'bhyve'];

export function checkBrand(spec: VmSpec): void {
  if (!RESTORABLE_BRANDS.includes(spec.brand))
    throw new RestoreError(
      `VM ${spec.uuid} has brand ${JSON.stringify(spec.brand)}, which zonecopy cannot restore (it restores ${RESTORABLE_BRANDS.join(', ')}); nothing was changed.`,
    );
}

type Nic = Record<string, unknown>;

/** Static addresses without their prefix; dhcp and addrconf are not addresses. */
function staticAddresses(nic: Nic): string[] {
  const all = [...(Array.isArray(nic.ips) ? (nic.ips as unknown[]) : []), ...(nic.ip !== undefined ? [nic.ip] : [])];
  return all.map((a) => String(a).split('/')[0]!).filter((a) => a !== 'dhcp' && a !== 'addrconf' && a !== '');
}

/**
 * What vmadm create would refuse as a network conflict (smartos-live VM.js `lookupConflicts`,
 * `hasConflictingIP`): another VM (not failed) with one of the nics' MACs, a static IP on the
 * same nic tag and VLAN, or a VRRP VRID. Said before anything changes, naming both.
 */
export function nicConflict(
  nics: readonly Nic[],
  others: ReadonlyArray<{ uuid: string; state?: unknown; nics?: unknown }>,
): string | undefined {
  for (const vm of others) {
    if (vm.state === 'failed') continue;
    const theirs = (Array.isArray(vm.nics) ? vm.nics : []) as Nic[];
    for (const nic of nics) {
      const sameNetwork = (other: Nic) => other.nic_tag === nic.nic_tag && other.vlan_id === nic.vlan_id;
      if (nic.mac !== undefined && theirs.some((o) => o.mac === nic.mac))
        return `VM ${vm.uuid} already has MAC ${String(nic.mac)}`;
      const ip = staticAddresses(nic).find((a) => theirs.some((o) => sameNetwork(o) && staticAddresses(o).includes(a)));
      if (ip) return `VM ${vm.uuid} already has IP ${ip} on nic tag ${String(nic.nic_tag)}`;
      if (nic.vrrp_vrid !== undefined && theirs.some((o) => o.vrrp_vrid === nic.vrrp_vrid))
        return `VM ${vm.uuid} already has VRRP VRID ${String(nic.vrrp_vrid)}`;
    }
  }
  return undefined;
}

/** Refuses a restore whose nics another VM on this host has (the VM being replaced does not count). */
export async function checkNicConflicts(spec: VmSpec, replacing: string | undefined, local: Host): Promise<void> {
  const nics = (spec.nics as Nic[] | undefined) ?? [];
  if (nics.length === 0) return;
  const listed = await local.run(['vmadm', 'lookup', '-j', '-o', 'uuid,state,nics'], { mutates: false });
  const others = (JSON.parse(listed.stdout || '[]') as Array<{ uuid: string }>).filter((vm) => vm.uuid !== replacing);
  const conflict = nicConflict(nics, others);
  if (conflict)
    throw new RestoreError(
      `VM ${spec.uuid} cannot be restored here: ${conflict}. Restore a copy with --new-uuid (new MACs, no static IPs), or change or delete that VM first; nothing was changed.`,
    );
}

/** Bytes a restore brings into each pool, beside what is there. */
export type PoolNeeds = Map<string, number>;

/** Adds what one dataset takes: its streams, or at least the reservation its zvol gets (the spec's MiB). */
export function addNeed(needs: PoolNeeds, spec: VmSpec, dataset: string, streamBytes: number): void {
  const disk = (spec.disks ?? []).find((d) => d.zfs_filesystem === dataset);
  const reserved = typeof disk?.refreservation === 'number' ? disk.refreservation * 2 ** 20 : 0;
  const pool = poolOf(dataset);
  needs.set(pool, (needs.get(pool) ?? 0) + Math.max(streamBytes, reserved));
}

/** Refuses when a pool has less room than the restore will take, before anything changes. */
export async function checkRoom(needs: PoolNeeds, local: Host): Promise<void> {
  const pools = [...needs.keys()];
  if (pools.length === 0) return;
  const out = await local.run(['zfs', 'get', '-Hp', '-o', 'name,value', 'available', ...pools], { mutates: false });
  const available = new Map(
    out.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t') as [string, string]),
  );
  for (const [pool, bytes] of needs) {
    const free = Number(available.get(pool));
    if (Number.isFinite(free) && bytes > free)
      throw new RestoreError(
        `pool ${pool} has ${mib(free)} MiB available, the restore needs ${mib(bytes)} MiB (streams, and zvol reservations); free space or restore elsewhere (--to-host); nothing was changed.`,
      );
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
