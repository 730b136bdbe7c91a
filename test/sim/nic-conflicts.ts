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

/** The MAC a VRRP nic has: its VRID in the VRRP range (smartos-live src/vm/node_modules/utils.js vrrpMAC). */
export function vrrpMac(vrid: unknown): string {
  return `00:00:5e:00:01:${Number(vrid).toString(16).padStart(2, '0')}`;
}

/**
 * vmadm create's rules for VRRP nics, from VM.js `validateNics` (payload nics become add_nics; a VRRP
 * nic without a MAC gets its VRRP MAC in `normalizeNics`): the message vmadm fails with, if any.
 */
export function vrrpRuleError(nics: readonly Nic[]): string | undefined {
  const vrids: unknown[] = [];
  const primaries: string[] = [];
  for (const nic of nics) {
    if (nic.vrrp_vrid === undefined) continue;
    const vrid = Number(nic.vrrp_vrid);
    if (!Number.isInteger(vrid) || vrid < 0 || vrid > 255) return 'Invalid value(s) for: nics.*.vrrp_vrid';
    if (vrids.includes(vrid)) return `Cannot add multiple NICs with the same VRID: ${vrid}`;
    vrids.push(vrid);
    if (nic.mac !== undefined && nic.mac !== vrrpMac(vrid)) return 'Cannot set both mac and vrrp_vrid';
  }
  for (const nic of nics) if (nic.vrrp_primary_ip !== undefined) primaries.push(String(nic.vrrp_primary_ip));
  for (const nic of nics.filter((n) => n.vrrp_vrid !== undefined)) {
    if (staticAddresses(nic).some((ip) => primaries.includes(ip)))
      return 'Cannot set vrrp_primary_ip to the IP of a VRRP nic';
    if (nic.vrrp_primary_ip === undefined) return 'vrrp_vrid set but not vrrp_primary_ip';
  }
  if (nics.length > 0 && nics.every((n) => n.vrrp_vrid !== undefined)) return 'VM cannot contain only VRRP nics';
  const ours = nics.flatMap(staticAddresses);
  if (primaries.some((ip) => !ours.includes(ip))) return 'vrrp_primary_ip must belong to the same VM';
  return undefined;
}

/** A VRRP nic without a MAC gets its VRRP MAC (VM.js normalizeNics, before checkPayloadProperties and the conflict check). */
export function withVrrpMacs(nics: readonly Nic[]): Nic[] {
  return nics.map((nic) =>
    nic.vrrp_vrid !== undefined && nic.mac === undefined ? { ...nic, mac: vrrpMac(nic.vrrp_vrid) } : nic,
  );
}
