import * as z from 'zod';
import { parseSchedule } from '../plan/retention.js';
import { parseCron, parseEvery } from '../service/cron.js';
import { isValidSnapshotPart } from '../zfs/names.js';

/**
 * `policies` in configuration.json: what `zonecopy serve` backs up and when (src/config/README.md,
 * Service). Each policy picks VMs as `backup --all/--filter/--exclude` or by UUID, fires on a cron
 * schedule or every N seconds, and snapshots into its own group with its own retention.
 */

const checked = (parse: (text: string) => unknown) =>
  z.string().superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });

const FILTER = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_*-]+)*=.*$/s;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const policyVmsSchema = z
  .object({
    /** Every VM on this host. */
    all: z.boolean().optional(),
    /** vmadm lookup filters, all of which must match (tags.backup=daily, alias=~^web). */
    filter: z.array(z.string().regex(FILTER, 'key=value or key=~regex as vmadm lookup takes them')).optional(),
    uuids: z.array(z.string().regex(UUID, 'a VM UUID')).optional(),
    /** UUIDs or aliases left out. */
    exclude: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .superRefine((vms, ctx) => {
    const named = (vms.uuids ?? []).length > 0;
    const selected = vms.all === true || (vms.filter ?? []).length > 0;
    if (!named && !selected)
      ctx.addIssue({
        code: 'custom',
        message: 'name the VMs: { "all": true }, { "filter": [...] } or { "uuids": [...] }',
      });
    if (named && selected) ctx.addIssue({ code: 'custom', message: 'give "uuids" or "all"/"filter", not both' });
  });

export const policySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only'),
    vms: policyVmsSchema,
    /** Cron's five fields, in the host's local time. */
    schedule: checked(parseCron).optional(),
    /** Continuous: a cycle this often (15s, 5m, 1h). */
    every: checked(parseEvery).optional(),
    /** The snapshot group (as --groupName): rotation touches only it. */
    group: z.string().refine(isValidSnapshotPart, 'a snapshot group: letters, digits and _ . : - only'),
    localRetention: checked(parseSchedule).optional(),
    remoteRetention: checked(parseSchedule).optional(),
    /** Target names (from "targets"); default every target. */
    targets: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if ((p.schedule === undefined) === (p.every === undefined))
      ctx.addIssue({
        code: 'custom',
        message: 'give exactly one of "schedule" (cron, e.g. "0 3 * * *") and "every" (e.g. "15s")',
      });
  });

export const policiesSchema = z.array(policySchema).superRefine((policies, ctx) => {
  const seen = new Set<string>();
  policies.forEach((p, i) => {
    if (seen.has(p.name))
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two policies are named "${p.name}"` });
    seen.add(p.name);
  });
});

export type Policy = z.output<typeof policySchema>;
export const POLICY_KEYS: readonly string[] = Object.keys(policySchema.shape);
export const POLICY_VMS_KEYS: readonly string[] = Object.keys(policyVmsSchema.shape);
