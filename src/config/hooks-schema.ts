import * as z from 'zod';
import { isValidSnapshotPart } from '../zfs/names.js';

/**
 * `hooks` in configuration.json: commands around each VM's snapshot, so databases are paused or
 * flushed for its instant (src/config/README.md). Settings at the top apply to every VM; `groups`
 * (by --groupName, the backup policy) and `vms` (by UUID) override them key by key.
 */

/** A command line the operator wrote, run by exactly one `/bin/sh -c` (in the zone: zlogin's own shell). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const commandLine = z.string().trim().min(1, 'a command line (empty is not allowed; leave the key out for no hook)');

const pair = z
  .object({ pre: commandLine.optional(), post: commandLine.optional() })
  .strict()
  .refine(
    (p) => p.pre !== undefined || p.post !== undefined,
    '"pre" and/or "post": a command line run before or after the snapshot',
  );

const timeout = z
  .number({ error: 'expected a number of seconds' })
  .int('whole seconds')
  .min(1, 'at least 1 second')
  .max(3600, 'at most 3600 seconds: a snapshot hook should pause an application for moments, not hours');

export const hookSettingsSchema = z
  .object({
    /** Per hook; a hook still running then is killed with its process group. */
    timeoutSeconds: timeout.optional(),
    /** What a failing pre hook means for the VM's backup. */
    onPreFailure: z
      .enum(['fail', 'crash-consistent'], {
        error:
          'either "fail" (no snapshot, the VM\'s backup fails) or "crash-consistent" (snapshot anyway, reported as crash-consistent)',
      })
      .optional(),
    /** Inside an OS or LX zone, with `zlogin <uuid>`. */
    zone: pair.optional(),
    /** In the global zone, with ZONECOPY_VM_UUID, ZONECOPY_VM_ALIAS and ZONECOPY_SNAPSHOT set. */
    global: pair.optional(),
    /** KVM: guest-fsfreeze-freeze / -thaw over the guest agent socket set in qemu_extra_opts. */
    guestAgent: z.boolean({ error: 'true or false' }).optional(),
  })
  .strict();

export const hooksSchema = hookSettingsSchema
  .extend({
    groups: z
      .record(z.string(), hookSettingsSchema)
      .superRefine((groups, ctx) => {
        for (const key of Object.keys(groups)) {
          if (!isValidSnapshotPart(key))
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: 'a key here must be a snapshot group as given to --groupName (letters, digits and _ . : - only)',
            });
        }
      })
      .optional(),
    vms: z
      .record(z.string(), hookSettingsSchema)
      .superRefine((vms, ctx) => {
        for (const key of Object.keys(vms)) {
          if (!UUID.test(key))
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: 'a key here must be a VM UUID (lowercase, as `vmadm list -o uuid,alias` shows it)',
            });
        }
      })
      .optional(),
  })
  .strict();

export type HookSettings = z.output<typeof hookSettingsSchema>;
export type HooksConfig = z.output<typeof hooksSchema>;
export const HOOK_KEYS: readonly string[] = Object.keys(hooksSchema.shape);
export const HOOK_SETTING_KEYS: readonly string[] = Object.keys(hookSettingsSchema.shape);
