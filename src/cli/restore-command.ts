import { loadConfig } from '../config/load.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { RemoteHost } from '../host/remote.js';
import { stderrLog } from '../log.js';
import { humanBytes } from '../report/render.js';
import { restoreVm, RestoreError, type RestoreResult } from '../restore/restore-vm.js';
import { BackupHostSource } from '../restore/backup-host-source.js';
import { listAcrossTargets, pickAcrossTargets } from '../restore/across-targets.js';
import { renderSetList, renderTargetSetList, type ListedSet } from '../restore/list-sets.js';
import type { RestoreSource } from '../restore/source.js';
import type { Config } from '../config/schema.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import type { Log } from '../log.js';
import { isValidSnapshotPart } from '../zfs/names.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, chooseTarget, connectBackupHost, sshEndpoint, sshTarget, UsageError } from './session.js';

export interface RestoreFlags {
  config?: string;
  snapshot?: string;
  newUuid?: boolean;
  force?: boolean;
  start?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  json?: boolean;
  target?: string;
  toHost?: string;
  list?: boolean;
}

/** `[user@]host[:port]` of the SmartOS host a restore goes to, when it is not this one. */
export function parseHostSpec(spec: string): { username: string; host: string; port: number } {
  const match = /^(?:([^@\s]+)@)?([^@:\s]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(spec);
  const port = Number(match?.[3] ?? 22);
  if (!match || port < 1 || port > 65535)
    throw new UsageError(`--to-host ${JSON.stringify(spec)}: expected [user@]host[:port], e.g. root@smartos-02`);
  return { username: match[1] ?? 'root', host: match[2]!.replace(/^\[|\]$/g, ''), port };
}

export async function restoreCommand(uuid: string, flags: RestoreFlags): Promise<number> {
  checkUuids([uuid]);
  if (flags.snapshot !== undefined && !isValidSnapshotPart(flags.snapshot))
    throw new UsageError(`--snapshot ${JSON.stringify(flags.snapshot)} is not a snapshot name`);
  const targets = restoreTargets(loadConfig(flags.config ?? defaultConfigPath()), flags.target);
  const log = stderrLog(Boolean(flags.verbose));
  const dryRun = Boolean(flags.dryRun);
  const first = targets[0]!;
  // --to-host: the VM is recreated and received on another SmartOS host, over SSH, as if run there
  const local: Host = flags.toHost
    ? await RemoteHost.connect({ ...sshEndpoint(first.config, first.type), ...parseHostSpec(flags.toHost), dryRun })
    : new LocalHost(dryRun);
  const opened: OpenedSource[] = [];
  const open = async (target: ResolvedTarget) => {
    const source = await openSource(target, dryRun, log);
    opened.push(source);
    return source.source;
  };
  try {
    if (targets.length === 1) {
      // one target: its own errors, as they come (a connection refused, no backups there)
      const source = await open(first);
      if (flags.list) return await listSets(uuid, flags, source);
      return await restore(uuid, flags, { local, source, log, target: first.name }, flags.snapshot);
    }
    const listed = await listAcrossTargets(
      targets.map((t) => ({ name: t.name, listSets: async () => (await open(t)).listSets(uuid) })),
    );
    if (flags.list) {
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ uuid, targets: listed }, null, 2)}\n`
          : `${renderTargetSetList(uuid, listed)}\n`,
      );
      return listed.some((l) => 'sets' in l) ? EXIT_OK : EXIT_FAILED;
    }
    const chosen = pickAcrossTargets(listed, flags.snapshot);
    if ('error' in chosen) {
      process.stderr.write(`zonecopy restore: VM ${uuid}: ${chosen.error}\n`);
      return EXIT_FAILED;
    }
    for (const { target, error } of chosen.unreachable) log.warn(`target ${target} skipped: ${error}`);
    const source = opened.find((o) => o.name === chosen.target)!.source;
    return await restore(uuid, flags, { local, source, log, target: chosen.target }, chosen.snapshot);
  } finally {
    for (const o of opened) await o.close();
    await local.close();
  }
}

/** The targets a restore considers: `--target NAME`, else every one configured, each checked. */
function restoreTargets(config: Config, flag: string | undefined): ResolvedTarget[] {
  const selected = selectTargets(config, flag);
  if ('error' in selected) throw new UsageError(selected.error);
  for (const t of selected) chooseTarget(t.config, t.type);
  return selected;
}

interface OpenedSource {
  name: string;
  source: RestoreSource;
  close(): Promise<void>;
}

async function openSource(target: ResolvedTarget, dryRun: boolean, log: Log): Promise<OpenedSource> {
  if (target.type === 's3')
    return { name: target.name, source: await objectStoreSource(target.config, log), close: async () => {} };
  const remote = await connectBackupHost(target.config, { dryRun });
  return { name: target.name, source: backupHostSource(remote, target.config, log), close: () => remote.close() };
}

async function restore(
  uuid: string,
  flags: RestoreFlags,
  context: { local: Host; source: RestoreSource; log: Log; target: string },
  snapshot: string | undefined,
): Promise<number> {
  const started = Date.now();
  const options = {
    uuid,
    snapshot,
    newUuid: Boolean(flags.newUuid),
    force: Boolean(flags.force),
    start: Boolean(flags.start),
  };
  try {
    const result = await restoreVm(options, context);
    const seconds = (Date.now() - started) / 1000;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...result, target: context.target, seconds }, null, 2)}\n`);
    } else {
      process.stdout.write(
        flags.dryRun
          ? `[dry run] would restore VM ${result.uuid} from ${context.target} backup set ${result.snapshot}${result.started ? ', started' : ', stopped'}\n`
          : `restored VM ${result.uuid} from ${context.target} backup set ${result.snapshot} in ${seconds.toFixed(1)} s${result.started ? ', started' : ', stopped'}\n`,
      );
      for (const d of result.datasets)
        process.stdout.write(
          `  ${d.backup}@${result.snapshot} -> ${d.local}  ${d.mode}  ${humanBytes(d.bytes)}  ${d.seconds.toFixed(1)} s\n`,
        );
      if (result.imagesInstalled.length)
        process.stdout.write(`  images installed from the backup: ${result.imagesInstalled.join(', ')}\n`);
      for (const line of nicLines(result)) process.stdout.write(`  ${line}\n`);
      if (result.replaced && !flags.dryRun)
        process.stdout.write(
          result.kept?.length
            ? `  the VM that was here was replaced; its previous copy was kept: ${result.kept.join(', ')}\n`
            : '  the VM that was here was replaced after the backup was completely received, and its previous copy removed\n',
        );
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RestoreError) {
      process.stderr.write(`zonecopy restore: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

/** `restore --list`: the complete backup sets, newest first, each with how consistent it is; nothing is changed. */
async function listSets(uuid: string, flags: RestoreFlags, source: RestoreSource): Promise<number> {
  let sets: ListedSet[];
  try {
    sets = await source.listSets(uuid);
  } catch (error) {
    if (!(error instanceof RestoreError)) throw error;
    process.stderr.write(`zonecopy restore: ${error.message}\n`);
    return EXIT_FAILED;
  }
  process.stdout.write(flags.json ? `${JSON.stringify({ uuid, sets }, null, 2)}\n` : `${renderSetList(uuid, sets)}\n`);
  return EXIT_OK;
}

function backupHostSource(remote: Host, config: Config, log: Log): BackupHostSource {
  const paths = { basePath: sshTarget(config).basePath, specDirectory: config.backupConfigurationDestinationPath };
  return new BackupHostSource(remote, paths, log);
}

/** Imported only when used: the AWS SDK is large. */
async function objectStoreSource(config: Config, log: Log): Promise<RestoreSource> {
  const { ObjectStoreSource, S3Store } = await import('../s3/index.js');
  return new ObjectStoreSource(new S3Store(config.s3!), config.s3!, log);
}

/** What a copy's nics lost beside the original: one line per nic. */
export function nicLines(result: Pick<RestoreResult, 'uuid' | 'nics'>): string[] {
  return (result.nics ?? []).map((nic) => {
    const dropped = nic.droppedIps.length
      ? `; static IP ${nic.droppedIps.join(', ')} dropped (give the copy its own: vmadm update ${result.uuid} update_nics=...)`
      : '';
    return `${nic.interface}: MAC ${nic.oldMac} -> ${nic.newMac ?? '(chosen by vmadm)'}${dropped}`;
  });
}
