import * as z from 'zod';
import type { Host } from '../host/host.js';

/** One VM as `vmadm lookup -j` lists it: enough to choose it, name it, and see which images it is cloned from. */
export interface VmListing {
  uuid: string;
  alias?: string;
  state?: string;
  brand?: string;
  /** The images its root and disks are cloned from. */
  images: string[];
}

/** Which VMs a run backs up: UUIDs named, or every VM (`--all`) or those vmadm's filters match, less exclusions. */
export interface VmSelector {
  uuids?: readonly string[];
  all?: boolean;
  /** `key=value` or `key=~regex`, as `vmadm lookup` takes them (tags.backup=daily). */
  filters?: readonly string[];
  /** UUIDs or aliases left out. */
  exclude?: readonly string[];
}

export class SelectionError extends Error {
  override name = 'SelectionError';
}

const lookupSchema = z.array(
  z
    .object({
      uuid: z.string(),
      alias: z.string().optional(),
      state: z.string().optional(),
      brand: z.string().optional(),
      image_uuid: z.string().optional(),
      disks: z.array(z.object({ image_uuid: z.string().optional() }).loose()).optional(),
    })
    .loose(),
);

/** vmadm(8) lookup takes `field=value` and `field=~regex`; anything else is refused here, before vmadm. */
const FILTER = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_*-]+)*=.*$/s;

export function describeSelector(selector: VmSelector): string {
  const parts = [
    ...(selector.all ? ['--all'] : []),
    ...(selector.filters ?? []).map((f) => `--filter ${f}`),
    ...(selector.uuids ?? []),
  ];
  const excluded = (selector.exclude ?? []).map((e) => `--exclude ${e}`);
  return [...parts, ...excluded].join(' ');
}

/** A selector must name VMs one way; a filter must look like vmadm's. */
export function checkSelector(selector: VmSelector): void {
  const named = (selector.uuids ?? []).length > 0;
  const filtered = (selector.filters ?? []).length > 0;
  if (!named && !selector.all && !filtered)
    throw new SelectionError('name the VMs to back up: their UUIDs, --all, or --filter key=value (as vmadm lookup)');
  if (named && (selector.all || filtered)) throw new SelectionError('give VM UUIDs or --all/--filter, not both');
  for (const filter of selector.filters ?? []) {
    if (!FILTER.test(filter))
      throw new SelectionError(
        `--filter ${JSON.stringify(filter)}: expected key=value or key=~regex as vmadm lookup takes them, e.g. tags.backup=daily`,
      );
  }
}

/** Every VM the filters match (all VMs without filters), in one `vmadm lookup`; vmadm judges the filters. */
export async function listVms(host: Host, filters: readonly string[] = []): Promise<VmListing[]> {
  const result = await host.run(
    ['vmadm', 'lookup', '-j', '-o', 'uuid,alias,state,brand,image_uuid,disks', ...filters],
    { mutates: false, allowExitCodes: [1, 2] },
  );
  if (result.exitCode !== 0) {
    const why = result.stderr.trim() || `exit ${result.exitCode}`;
    throw new SelectionError(
      filters.length > 0
        ? `vmadm lookup refused the filter ${filters.map((f) => JSON.stringify(f)).join(' ')}: ${why}`
        : `vmadm lookup failed: ${why}`,
    );
  }
  const parsed = lookupSchema.safeParse(JSON.parse(result.stdout || '[]'));
  if (!parsed.success)
    throw new SelectionError(`vmadm lookup -j printed what zonecopy cannot read: ${parsed.error.message}`);
  return parsed.data.map((vm) => ({
    uuid: vm.uuid,
    ...(vm.alias !== undefined && { alias: vm.alias }),
    ...(vm.state !== undefined && { state: vm.state }),
    ...(vm.brand !== undefined && { brand: vm.brand }),
    images: [...new Set([vm.image_uuid, ...(vm.disks ?? []).map((d) => d.image_uuid)].filter((i) => i !== undefined))],
  }));
}

export interface Selection {
  uuids: string[];
  /** What an operator should hear: a selector that matched nothing, an exclusion that matched no VM. */
  notes: string[];
}

/**
 * The VMs a selector picks from a listing (pure). Named UUIDs are kept even when not listed, so the
 * run reports them as missing rather than skipping them quietly; failed VMs (state failed) are kept too.
 */
export function selectVms(selector: VmSelector, listed: readonly VmListing[]): Selection {
  const notes: string[] = [];
  const exclude = new Set(selector.exclude ?? []);
  const excluded = (vm: VmListing) => exclude.has(vm.uuid) || (vm.alias !== undefined && exclude.has(vm.alias));
  for (const e of exclude)
    if (!listed.some((vm) => vm.uuid === e || vm.alias === e))
      notes.push(`--exclude ${e}: no VM on this host has that UUID or alias`);
  if ((selector.uuids ?? []).length > 0) {
    const uuids = [...new Set(selector.uuids)].filter((u) => {
      const vm = listed.find((l) => l.uuid === u);
      return !(vm ? excluded(vm) : exclude.has(u));
    });
    return { uuids, notes };
  }
  const uuids = listed.filter((vm) => !excluded(vm)).map((vm) => vm.uuid);
  if (listed.length === 0) notes.push(`${describeSelector({ ...selector, exclude: [] })} matches no VM on this host`);
  else if (uuids.length === 0)
    notes.push(`every VM ${describeSelector({ ...selector, exclude: [] })} matches is excluded`);
  return { uuids, notes };
}

/**
 * Which VMs each VM waits for (pure): the first VM cloned from an image goes alone, so one image is
 * never sent twice at once (the second receive would fail on the first's dataset); once it is done,
 * the image is on the targets and the others cloned from it run side by side.
 */
export function imageFirsts(uuids: readonly string[], listed: readonly VmListing[]): Map<string, string[]> {
  const first = new Map<string, string>();
  const waits = new Map<string, string[]>();
  for (const uuid of uuids) {
    const images = listed.find((vm) => vm.uuid === uuid)?.images ?? [];
    const before = new Set<string>();
    for (const image of images) {
      const owner = first.get(image);
      if (owner === undefined) first.set(image, uuid);
      else before.add(owner);
    }
    waits.set(uuid, [...before]);
  }
  return waits;
}
