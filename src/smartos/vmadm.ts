import * as z from 'zod';
import type { Host } from '../host/host.js';

/** The parts of `vmadm get` that backup and restore rely on; everything else is kept verbatim. */
const vmSpecSchema = z
  .object({
    uuid: z.string(),
    alias: z.string().optional(),
    brand: z.string(),
    zfs_filesystem: z.string(),
    zpool: z.string().optional(),
    image_uuid: z.string().optional(),
    datasets: z.array(z.string()).optional(),
    disks: z.array(z.object({ zfs_filesystem: z.string().optional(), path: z.string().optional() }).loose()).optional(),
    internal_metadata: z.record(z.string(), z.unknown()).optional(),
    /** bhyve: MiB for the disks and their snapshots (VM.js setQuotaBhyve). */
    flexible_disk_size: z.number().optional(),
  })
  .loose();

export type VmSpec = z.infer<typeof vmSpecSchema>;

export class UnknownVmError extends Error {
  override name = 'UnknownVmError';
}

export interface VmSpecWithRaw {
  spec: VmSpec;
  /** Exactly what vmadm printed, stored with each backup for restore. */
  raw: string;
}

export async function vmadmGet(host: Host, uuid: string): Promise<VmSpecWithRaw> {
  const result = await host.run(['vmadm', 'get', uuid], { mutates: false, allowExitCodes: [1, 2] });
  if (result.exitCode !== 0) {
    const why = result.stderr.trim() || `exit ${result.exitCode}`;
    throw new UnknownVmError(
      `VM ${uuid} not found on this host (vmadm get: ${why}). Check the UUID with \`vmadm list\`.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch (error) {
    throw new Error(`vmadm get ${uuid} printed something that is not JSON: ${(error as Error).message}`);
  }
  const parsed = vmSpecSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `vmadm get ${uuid} returned a VM object without ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`,
    );
  }
  return { spec: parsed.data, raw: result.stdout };
}

/** The zone configuration (`/etc/zones/<uuid>.xml`), when the host has one. */
export async function readZoneConfig(host: Host, uuid: string): Promise<string | undefined> {
  const result = await host.run(['cat', `/etc/zones/${uuid}.xml`], { mutates: false, allowExitCodes: [1, 2] });
  return result.exitCode === 0 ? result.stdout : undefined;
}

const IMAGE_DATASET = /^[^/]+\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The image UUID when `dataset` is an installed image (`<pool>/<uuid>`), else undefined. */
export function imageUuidOf(dataset: string): string | undefined {
  return IMAGE_DATASET.exec(dataset)?.[1];
}

/** `imgadm get <uuid>` ({manifest, zpool, …}), or undefined when imgadm does not know it. */
export async function imgadmGet(host: Host, uuid: string): Promise<Record<string, unknown> | undefined> {
  const result = await host.run(['imgadm', 'get', uuid], { mutates: false, allowExitCodes: [1, 2, 3] });
  if (result.exitCode !== 0) return undefined;
  try {
    return JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export interface VmLabel {
  alias?: string;
  brand?: string;
}

const lookupSchema = z.array(
  z.object({ uuid: z.string(), alias: z.string().optional(), brand: z.string().optional() }).loose(),
);

/**
 * Alias and brand of each VM, for the reports of a run that failed before it reached them. The
 * specs already being fetched are used as they are, the other VMs come from one `vmadm lookup`;
 * a VM that vmadm does not know, or a vmadm that fails, just leaves the VM without a label.
 */
export async function vmLabels(
  host: Host,
  uuids: readonly string[],
  fetched: ReadonlyMap<string, Promise<VmSpecWithRaw>> = new Map(),
): Promise<Map<string, VmLabel>> {
  const labels = new Map<string, VmLabel>();
  const label = (vm: { alias?: string; brand?: string }): VmLabel => ({
    ...(vm.alias !== undefined && { alias: vm.alias }),
    ...(vm.brand !== undefined && { brand: vm.brand }),
  });
  for (const [uuid, spec] of fetched) {
    const got = await spec.catch(() => undefined);
    if (got) labels.set(uuid, label(got.spec));
  }
  const rest = uuids.filter((uuid) => !fetched.has(uuid));
  if (rest.length === 0) return labels;
  try {
    const result = await host.run(['vmadm', 'lookup', '-j', '-o', 'uuid,alias,brand'], {
      mutates: false,
      allowExitCodes: [1, 2],
    });
    const found = result.exitCode === 0 ? lookupSchema.safeParse(JSON.parse(result.stdout)) : undefined;
    for (const vm of found?.data ?? []) if (rest.includes(vm.uuid)) labels.set(vm.uuid, label(vm));
  } catch {
    // unnamed in the report is better than the vmadm error hiding the one the run failed with
  }
  return labels;
}
