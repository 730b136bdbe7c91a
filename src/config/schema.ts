import { homedir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { isValidDatasetName, isValidSnapshotPart } from '../zfs/names.js';
import { parseSchedule } from '../plan/retention.js';
import { HOOK_KEYS, HOOK_SETTING_KEYS, hooksSchema } from './hooks-schema.js';
import { POLICY_KEYS, POLICY_VMS_KEYS, policiesSchema } from './policies-schema.js';

/**
 * configuration.json: smartcopy's keys (same names, same meaning) plus ours. Every key and its
 * default is documented in src/config/README.md and shown in configuration.json.example.
 */

/** smartcopy configs sometimes hold numbers as strings ("3"). */
const wholeNumber = (what: string) =>
  z
    .union([z.number(), z.string().regex(/^\s*\d+\s*$/, `expected ${what}`)], { error: `expected ${what}` })
    .transform((v) => Number(v));
const count = wholeNumber('a whole number').pipe(z.number().int().min(1, 'at least 1'));
const port = wholeNumber('a port number').pipe(z.number().int().min(1).max(65535));
/** A command as argv, or a string split on whitespace (never given to a shell). */
const argv = z
  .union([z.array(z.string().min(1)).min(1), z.string().trim().min(1)])
  .transform((v) => (typeof v === 'string' ? v.split(/\s+/) : v));
const mbufferSize = z.string().regex(/^\d+[kKmMgG]?$/, 'an mbuffer size such as 128M or 1G');
/** A thinning schedule (plan/retention.ts): checked here, so a bad one stops before anything runs. */
const schedule = z.string().superRefine((text, ctx) => {
  try {
    parseSchedule(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});
const verbosity = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const address = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** The object-storage target (`backupTarget: "s3"`): see src/config/README.md. */
export const s3Schema = z
  .object({
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (lowercase letters, digits, . and -)'),
    prefix: z
      .string()
      .regex(/^[^/](.*[^/])?$/, 'a key prefix without leading or trailing /')
      .default('zonecopy'),
    region: z.string().min(1).default('us-east-1'),
    endpoint: z.url({ error: 'a URL such as https://s3.example.com' }).optional(),
    forcePathStyle: z.boolean().optional(),
    profile: z.string().min(1).optional(),
    compression: z.enum(['zstd', 'gzip', 'none']).default('zstd'),
    gpgRecipient: z.string().min(1).optional(),
    gpgPath: z.string().min(1).default('gpg'),
    gpgHome: z.string().startsWith('/', 'an absolute directory').optional(),
    credentialsFile: z.string().startsWith('/', 'an absolute file').optional(),
    configFile: z.string().startsWith('/', 'an absolute file').optional(),
    partConcurrency: count.default(4),
    fullEvery: count.optional(),
    stateDirectory: z.string().startsWith('/', 'an absolute directory').default('/var/zonecopy/s3-uploads'),
  })
  .strict();

/** Settings one entry of `targets` may set for itself; what it leaves out it takes from the top level. */
const basePath = z
  .string()
  .refine(isValidDatasetName, 'a ZFS dataset name such as backup/zones (no leading or trailing /, no @)');
const strategy = z.enum(['ssh', 'ssh_gzip', 'mbuffer', 'mbuffer_gzip']);
const bulkTransport = z.enum(['openssh', 'ssh2']);
const concurrency = count.pipe(z.number().max(16, 'at most 16'));
const specDirectory = z.string().startsWith('/', 'an absolute directory on the backup host');
/** Goes into the target's hold tag `zonecopy:<name>:<group>` and into reports. */
const targetName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits and _ . - (at most 64, a letter or digit first)');

export const targetSchema = z
  .object({
    name: targetName,
    type: z.enum(['ssh', 's3']),
    backupDestination: z.string().min(1, 'the backup host name or address').optional(),
    backupDestinationUsername: z.string().min(1).optional(),
    backupDestinationPort: port.optional(),
    backupDestinationPrivateKeyPath: z.string().min(1).optional(),
    knownHostsPath: z.string().min(1).optional(),
    disableHostKeyChecking: z.boolean().optional(),
    backupDestinationBasePath: basePath.optional(),
    backupConfigurationDestinationPath: specDirectory.optional(),
    transferStrategy: strategy.optional(),
    sshBulkTransport: bulkTransport.optional(),
    transferConcurrency: concurrency.optional(),
    sshMaxSessions: count.optional(),
    remoteSnapshotLimit: count.optional(),
    remoteRetention: schedule.optional(),
    holds: z.boolean().optional(),
    staleAfter: z
      .string()
      .regex(/^\s*\d+(?:\.\d+)?\s*[smhdw]?\s*$/, 'a duration such as 36h or 2d (s, m, h, d, w)')
      .optional(),
    s3: s3Schema.optional(),
  })
  .strict();

export const configSchema = z
  .object({
    backupTarget: z.enum(['ssh', 's3']).default('ssh'),
    backupDestination: z.string().min(1, 'the backup host name or address').optional(),
    backupDestinationUsername: z.string().min(1).default('root'),
    backupDestinationPort: port.default(22),
    backupDestinationPrivateKeyPath: z.string().min(1).optional(),
    knownHostsPath: z
      .string()
      .min(1)
      .default(join(homedir(), '.ssh', 'known_hosts')),
    disableHostKeyChecking: z.boolean().default(false),
    backupDestinationBasePath: basePath.optional(),
    s3: s3Schema.optional(),
    targets: z.array(targetSchema).min(1, 'at least one target').optional(),
    backupConfigurationDestinationPath: specDirectory.default('/var/zonecopy/vmspecs'),
    backupSourceBasePath: z.string().optional(),
    transferStrategy: strategy.default('ssh'),
    sshBulkTransport: bulkTransport.default('openssh'),
    transferConcurrency: concurrency.optional(),
    sshMaxSessions: count.optional(),
    snapshotIdentifier: z.string().refine(isValidSnapshotPart, 'letters, digits and _ . : - only').default('smartcopy'),
    localSnapshotLimit: count.optional(),
    remoteSnapshotLimit: count.optional(),
    localRetention: schedule.optional(),
    remoteRetention: schedule.optional(),
    snapshotWhenTargetsDown: z.boolean().default(true),
    vmConcurrency: count.pipe(z.number().max(16, 'at most 16')).default(2),
    emailPerVm: z.boolean().default(false),
    compressionCmd: argv.optional(),
    decompressionCmd: argv.optional(),
    mBufferLocalPath: z.string().min(1).default('mbuffer'),
    mBufferRemotePath: z.string().min(1).default('mbuffer'),
    mBufferLocalBufferSize: mbufferSize.default('128M'),
    mBufferRemoteBufferSize: mbufferSize.default('128M'),
    mBufferPortRange: z
      .tuple([port, port])
      .refine(([low, high]) => low <= high, 'a [low, high] port range')
      .default([20000, 29999]),
    mBufferTimeoutSeconds: count.default(600),
    holds: z.boolean().default(true),
    staleAfter: z
      .string()
      .regex(/^\s*\d+(?:\.\d+)?\s*[smhdw]?\s*$/, 'a duration such as 36h or 2d (s, m, h, d, w)')
      .optional(),
    hooks: hooksSchema.optional(),
    lockDirectory: z.string().startsWith('/', 'an absolute directory').default('/var/run/zonecopy'),
    smtpHostname: z.string().min(1).optional(),
    smtpPort: port.optional(),
    smtpSecure: z.boolean().optional(),
    smtpUsername: z.string().optional(),
    smtpPassword: z.string().optional(),
    smtpRejectUnauthorized: z.boolean().default(true),
    smtpFromAddress: z.string().min(1).optional(),
    smtpToAddress: address.optional(),
    notificationOrder: z.string().optional(),
    successSubject: z.string().default('✔ Backup Successful for [vm.alias]'),
    partialSubject: z.string().default('⚠ Backup Partially Failed for [vm.alias]'),
    failedSubject: z.string().default('✘ Backup Failed for [vm.alias]'),
    logDirectory: z.string().min(1).default('/var/log/zonecopy'),
    logVerbosity: verbosity.optional(),
    outputVerbosity: verbosity.optional(),
    /** `zonecopy serve`: its policies, state file, metrics and when it emails. */
    policies: policiesSchema.optional(),
    serviceStateFile: z.string().startsWith('/', 'an absolute path').default('/var/zonecopy/service.json'),
    metricsTextfile: z
      .string()
      .startsWith('/', 'an absolute path')
      .endsWith('.prom', 'a file ending in .prom (node_exporter reads only those)')
      .optional(),
    metricsListen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):\d{1,5}$/, 'host:port, e.g. 127.0.0.1:9464')
      .optional(),
    serviceEmail: z.enum(['changes', 'failures', 'always', 'never']).default('changes'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.policies) checkPolicyTargets(c, c.policies, ctx);
    if (c.targets) checkTargets(c, c.targets, ctx);
    if (!c.targets && c.backupTarget === 'ssh') {
      for (const key of ['backupDestination', 'backupDestinationBasePath'] as const) {
        if (c[key] === undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'required for the SSH backup host (backupTarget "ssh")',
          });
      }
    }
    if (!c.targets && c.backupTarget === 's3' && c.s3 === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['s3'],
        message: 'required when backupTarget is "s3": { "bucket": "...", "endpoint": "..." }',
      });
    }
    if ((c.compressionCmd === undefined) !== (c.decompressionCmd === undefined)) {
      const missing = c.compressionCmd === undefined ? 'compressionCmd' : 'decompressionCmd';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: `compressionCmd and decompressionCmd go together: set ${missing} too, or neither (default gzip / gunzip)`,
      });
    }
    if ((c.smtpUsername === undefined) !== (c.smtpPassword === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.smtpUsername === undefined ? 'smtpUsername' : 'smtpPassword'],
        message: 'smtpUsername and smtpPassword go together',
      });
    }
    for (const name of (c.notificationOrder ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (name !== 'email')
        ctx.addIssue({
          code: 'custom',
          path: ['notificationOrder'],
          message: `unknown notifier "${name}"; only "email" is supported`,
        });
    }
    // each VM side by side needs a stream and two control sessions of the backup host's sshd MaxSessions
    const sshTargets = c.targets ? c.targets.filter((t) => t.type === 'ssh') : c.backupTarget === 'ssh' ? [{}] : [];
    const sessions = Math.min(
      ...sshTargets.map((t: { sshMaxSessions?: number }) => t.sshMaxSessions ?? c.sshMaxSessions ?? 10),
    );
    if (sshTargets.length > 0 && c.vmConcurrency * 3 > sessions)
      ctx.addIssue({
        code: 'custom',
        path: ['vmConcurrency'],
        message: `${c.vmConcurrency} VMs side by side need sshMaxSessions of at least ${c.vmConcurrency * 3} (one stream and two control sessions each; it is ${sessions}): lower vmConcurrency, or raise MaxSessions in the backup host's sshd_config and sshMaxSessions here`,
      });
    if (c.smtpHostname && (!c.smtpFromAddress || !c.smtpToAddress)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.smtpFromAddress ? 'smtpToAddress' : 'smtpFromAddress'],
        message: 'needed when smtpHostname is set',
      });
    }
  })
  .transform((c) => ({
    ...c,
    compressionCmd: c.compressionCmd ?? ['gzip'],
    decompressionCmd: c.decompressionCmd ?? ['gunzip'],
    smtpPort: c.smtpPort ?? (c.smtpSecure ? 465 : 25),
    smtpSecure: c.smtpSecure ?? c.smtpPort === 465,
    notifiers:
      c.notificationOrder !== undefined
        ? c.notificationOrder
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : c.smtpHostname
          ? ['email']
          : [],
  }));

/** A policy's targets must be configured targets' names (or ssh / s3 without "targets"). */
function checkPolicyTargets(
  c: { targets?: ReadonlyArray<{ name: string }>; backupDestination?: string; backupTarget: string },
  policies: ReadonlyArray<{ targets?: readonly string[] }>,
  ctx: z.RefinementCtx,
): void {
  const names = c.targets ? c.targets.map((t) => t.name) : [c.backupTarget, c.backupDestination ?? 'ssh'];
  policies.forEach((p, i) =>
    (p.targets ?? []).forEach((t, j) => {
      if (!names.includes(t))
        ctx.addIssue({
          code: 'custom',
          path: ['policies', i, 'targets', j],
          message: `no target named "${t}"; the configuration has ${names.map((n) => `"${n}"`).join(', ')}`,
        });
    }),
  );
}

/** Each target names what it needs, itself or at the top level; names are unique. */
function checkTargets(
  top: { backupDestination?: string; backupDestinationBasePath?: string; s3?: unknown },
  targets: ReadonlyArray<z.output<typeof targetSchema>>,
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    if (seen.has(t.name))
      ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `a second target named "${t.name}"` });
    seen.add(t.name);
    if (t.type === 'ssh') {
      for (const key of ['backupDestination', 'backupDestinationBasePath'] as const) {
        if (t[key] === undefined && top[key] === undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, key],
            message: `required for the SSH target "${t.name}" (here or at the top level)`,
          });
      }
      if (t.s3) ctx.addIssue({ code: 'custom', path: ['targets', i, 's3'], message: 'only for a target of type "s3"' });
    }
    if (t.type === 's3' && t.s3 === undefined && top.s3 === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 's3'],
        message: `required for the object-storage target "${t.name}": { "bucket": "...", "endpoint": "..." }`,
      });
  });
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export const CONFIG_KEYS: readonly string[] = Object.keys(configSchema.in.shape ?? {});
/** The keys of each nested section, by its dotted path, for did-you-mean on a misspelt nested key. */
export const SECTION_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': CONFIG_KEYS,
  s3: Object.keys(s3Schema.shape),
  targets: Object.keys(targetSchema.shape),
  hooks: HOOK_KEYS,
  'hooks.zone': ['pre', 'post'],
  'hooks.global': ['pre', 'post'],
  policies: POLICY_KEYS,
  'policies.vms': POLICY_VMS_KEYS,
};

/** The keys valid in a section by its dotted path; `hooks.groups.<g>` and `hooks.vms.<uuid>` take the hook settings. */
export function sectionKeys(section: string): readonly string[] {
  if (/^targets\.\d+$/.test(section)) return SECTION_KEYS.targets!;
  if (/^targets\.\d+\.s3$/.test(section)) return SECTION_KEYS.s3!;
  if (/^policies\.\d+$/.test(section)) return SECTION_KEYS.policies!;
  if (/^policies\.\d+\.vms$/.test(section)) return SECTION_KEYS['policies.vms']!;
  if (/^hooks\.(groups|vms)\.[^.]+$/.test(section)) return HOOK_SETTING_KEYS;
  if (/^hooks\.(groups|vms)\.[^.]+\.(zone|global)$/.test(section)) return ['pre', 'post'];
  return SECTION_KEYS[section] ?? [];
}
