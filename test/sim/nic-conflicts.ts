/**
 * vmadm's network conflict check on create (smartos-live src/vm/node_modules/VM.js,
 * `lookupConflicts` and `hasConflictingIP`): no other VM may already have one of the payload's
 * MACs, a static IP of it on the same nic tag and VLAN, or one of its VRRP VRIDs.
 */
export const CONFLICT_MESSAGE = 'Conflict detected with another vm, please check the MAC, IP, and VRID';

type Nic = Record<string, unknown>;

/** Static addresses without their prefix; dhcp and addrconf are not addresses (ipaddr.isAutoConfigOption). */
function staticAddresses(nic: Nic): string[] {
  const all = [...(Array.isArray(nic.ips) ? (nic.ips as unknown[]) : []), ...(nic.ip !== undefined ? [nic.ip] : [])];
  return all.map((a) => String(a).split('/')[0]!).filter((a) => a !== 'dhcp' && a !== 'addrconf' && a !== '');
}

/** The UUID of a VM whose nics conflict with `nics`, if any. */
export function conflictingVm(
  nics: readonly Nic[],
  others: ReadonlyArray<{ uuid: string; state?: unknown; nics?: unknown }>,
): string | undefined {
  for (const vm of others) {
    if (vm.state === 'failed') continue;
    const theirs = (Array.isArray(vm.nics) ? vm.nics : []) as Nic[];
    for (const nic of nics) {
      const sameNetwork = (other: Nic) => other.nic_tag === nic.nic_tag && other.vlan_id === nic.vlan_id;
      if (nic.mac !== undefined && theirs.some((o) => o.mac === nic.mac)) return vm.uuid;
      if (staticAddresses(nic).some((ip) => theirs.some((o) => sameNetwork(o) && staticAddresses(o).includes(ip))))
        return vm.uuid;
      if (nic.vrrp_vrid !== undefined && theirs.some((o) => o.vrrp_vrid === nic.vrrp_vrid)) return vm.uuid;
    }
  }
  return undefined;
}
