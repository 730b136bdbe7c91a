import { loadConfig } from '../config/load.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { RemoteHost } from '../host/remote.js';
import { stderrLog } from '../log.js';
import { humanBytes } from '../report/render.js';
import { restoreVm, RestoreError, type RestoreResult } from '../restore/restore-vm.js';
import { BackupHostSource } from '../restore/backup-host-source.js';
import { listAcrossTargets, pickAcrossTargets } from '../restore/across-targets.js';
import {
  backupHostDatasets,
  renderSetList,
  renderTargetSetList,
  storedDatasets,
  type ListedDataset,
  type ListedSet,
} from '../restore/list-sets.js';
import { findSetDataset, newNameProblem, receiveBeside, type ReceivedBeside } from '../restore/receive-beside.js';
import type { RestoreSource } from '../restore/source.js';
import type { Config } from '../config/schema.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import type { Log } from '../log.js';
import { isValidSnapshotPart, isWithin } from '../zfs/names.js';
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
  /** One dataset of the set (`--dataset NAME --as NEWNAME`), received beside the VM. */
  dataset?: string;
  as?: string;
}

/** Why the flags of `restore` do not go together, or undefined. Pure. */
export function restoreUsageProblem(flags: RestoreFlags): string | undefined {
  const one = flags.dataset !== undefined || flags.as !== undefined;
  if (!one) return undefined;
  if (flags.dataset === undefined)
    return '--as NEWNAME needs --dataset NAME (the dataset of the backup set to restore)';
  if (flags.as === undefined)
    return `--dataset ${flags.dataset} needs --as NEWNAME: one dataset is received beside the VM under a new name, never over it`;
  const clash = (['list', 'newUuid', 'force', 'start'] as const).find((f) => flags[f]);
  if (clash)
    return `--dataset restores one dataset beside the VM and cannot be combined with --${clash.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const problem = newNameProblem(flags.as, []);
  return problem;
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
  const usage = restoreUsageProblem(flags);
  if (usage) throw new UsageError(usage);
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
    return source;
  };
  try {
    if (targets.length === 1) {
      // one target: its own errors, as they come (a connection refused, no backups there)
      const target = await open(first);
      const source = target.source;
      if (flags.list) return await listSets(uuid, flags, target, log);
      if (flags.dataset !== undefined)
        return await restoreDataset(uuid, flags, { local, source, log, target: first.name }, flags.snapshot);
      return await restore(uuid, flags, { local, source, log, target: first.name }, flags.snapshot);
    }
    const listed = await listAcrossTargets(
      targets.map((t) => ({
        name: t.name,
        listSets: async () => {
          const target = await open(t);
          const sets = await target.source.listSets(uuid);
          return flags.list ? withDatasets(uuid, sets, target, log) : sets;
        },
      })),
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
    if (flags.dataset !== undefined)
      return await restoreDataset(uuid, flags, { local, source, log, target: chosen.target }, chosen.snapshot);
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
  /** The sets' datasets with their sizes, for `--list`. */
  datasets(uuid: string, sets: readonly ListedSet[]): Promise<Map<string, ListedDataset[]>>;
  close(): Promise<void>;
}

async function openSource(target: ResolvedTarget, dryRun: boolean, log: Log): Promise<OpenedSource> {
  if (target.type === 's3') {
    // imported only when used: the AWS SDK is large
    const { ObjectStoreSource, S3Store, readCatalog } = await import('../s3/index.js');
    const s3 = target.config.s3!;
    const store = new S3Store(s3);
    return {
      name: target.name,
      source: new ObjectStoreSource(store, s3, log),
      datasets: async (uuid, sets) => {
        const catalog = await readCatalog(store, s3.prefix, uuid);
        return new Map(sets.map((set) => [set.snapshot, storedDatasets(catalog, set.snapshot)]));
      },
      close: async () => {},
    };
  }
  const remote = await connectBackupHost(target.config, { dryRun });
  const source = backupHostSource(remote, target.config, log);
  return {
    name: target.name,
    source,
    datasets: async (uuid, sets) => {
      if (sets.length === 0) return new Map();
      // the newest set names the VM's top datasets there; one listing sizes every set's snapshots
      const newest = await source.readSet(uuid, sets[0]!.snapshot);
      const roots = newest.datasets.filter(
        (d) => !newest.datasets.some((p) => p !== d && isWithin(d.backup, p.backup)),
      );
      const argv = [
        'zfs',
        'list',
        '-Hp',
        '-t',
        'snapshot',
        '-r',
        '-o',
        'name,referenced',
        ...roots.map((r) => r.backup),
      ];
      const listing = await remote.run(argv, { mutates: false });
      return backupHostDatasets(
        listing.stdout,
        roots,
        sets.map((s) => s.snapshot),
      );
    },
    close: () => remote.close(),
  };
}

/** The sets with their datasets and sizes; without them (and a warning) when the target cannot say. */
async function withDatasets(uuid: string, sets: ListedSet[], opened: OpenedSource, log: Log): Promise<ListedSet[]> {
  try {
    const datasets = await opened.datasets(uuid, sets);
    return sets.map((set) => ({ ...set, datasets: datasets.get(set.snapshot) ?? [] }));
  } catch (error) {
    log.warn(`${opened.name}: the sets' datasets and sizes could not be listed: ${(error as Error).message}`);
    return sets;
  }
}

/** Where a restore reads from and writes to, and the target's name for messages. */
interface RestoreContext {
  local: Host;
  source: RestoreSource;
  log: Log;
  target: string;
}

async function restore(
  uuid: string,
  flags: RestoreFlags,
  context: RestoreContext,
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
  return operatorErrors(async () => {
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
  });
}

/** `restore --list`: the complete backup sets, newest first, each with how consistent it is; nothing is changed. */
async function listSets(uuid: string, flags: RestoreFlags, opened: OpenedSource, log: Log): Promise<number> {
  return operatorErrors(async () => {
    const sets = await withDatasets(uuid, await opened.source.listSets(uuid), opened, log);
    process.stdout.write(
      flags.json ? `${JSON.stringify({ uuid, sets }, null, 2)}\n` : `${renderSetList(uuid, sets)}\n`,
    );
    return EXIT_OK;
  });
}

/** A RestoreError is for the operator: its message and exit 1, nothing else printed; any other error propagates. */
async function operatorErrors(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof RestoreError)) throw error;
    process.stderr.write(`zonecopy restore: ${error.message}\n`);
    return EXIT_FAILED;
  }
}

function backupHostSource(remote: Host, config: Config, log: Log): BackupHostSource {
  const paths = { basePath: sshTarget(config).basePath, specDirectory: config.backupConfigurationDestinationPath };
  return new BackupHostSource(remote, paths, log);
}

/**
 * `restore --dataset NAME --as NEWNAME`: one dataset of the set received beside the VM, mounted
 * read-only (a file system) to copy files back from; the VM itself is not touched, and need not exist.
 */
async function restoreDataset(
  uuid: string,
  flags: RestoreFlags,
  context: RestoreContext,
  snapshot: string | undefined,
): Promise<number> {
  const started = Date.now();
  const { local, source, log } = context;
  return operatorErrors(async () => {
    const set = await source.readSet(uuid, snapshot);
    const dataset = findSetDataset(set, flags.dataset!);
    // a real run checks each stream's sha256 as it is received (and removes what it made on a mismatch)
    if (local.dryRun) await source.verify(set, { readStreams: false });
    const result = await receiveBeside(set, dataset, flags.as!, { local, source, log }, { mountReadOnly: true });
    const seconds = (Date.now() - started) / 1000;
    const remove = `zfs destroy -r ${result.into}`;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ vm: uuid, ...result, target: context.target, seconds, remove }, null, 2)}
`);
    } else {
      process.stdout.write(
        `${datasetLines(uuid, result, { target: context.target, seconds, dryRun: local.dryRun }).join('\n')}\n`,
      );
    }
    return EXIT_OK;
  });
}

/** What `restore --dataset` says: what was received where, how to reach it, what it left out, how to remove it. Pure. */
export function datasetLines(
  uuid: string,
  result: ReceivedBeside,
  run: { target: string; seconds: number; dryRun: boolean },
): string[] {
  const what = `dataset ${result.source} of VM ${uuid} from ${run.target} backup set ${result.snapshot} as ${result.into}`;
  const head = run.dryRun
    ? `[dry run] would restore ${what}`
    : `restored ${what} in ${run.seconds.toFixed(1)} s (${result.mode}, ${humanBytes(result.bytes)})`;
  const where =
    result.type === 'volume'
      ? [`volume, read-only: ${result.device}`]
      : result.mountpoint
        ? [`mounted read-only at ${result.mountpoint}: copy files back from there`]
        : run.dryRun
          ? ['would be mounted read-only']
          : [`not mounted (its mountpoint is none or legacy): zfs get mountpoint ${result.into}`];
  const clone = result.clonedFrom ? [`a clone of ${result.clonedFrom} (keep that image until this is removed)`] : [];
  const children = result.childrenLeft.map(
    (child) => `not included: ${child} (restore it with --dataset ${child} --as ANOTHER_NAME)`,
  );
  return [
    head,
    ...[...where, ...clone, ...children, `remove it when done: zfs destroy -r ${result.into}`].map((l) => `  ${l}`),
  ];
}

/** What a copy's nics lost beside the original: one line per nic. */
export function nicLines(result: Pick<RestoreResult, 'uuid' | 'nics'>): string[] {
  return (result.nics ?? []).map((nic) => {
    const dropped = nic.droppedIps.length
      ? `; static IP ${nic.droppedIps.join(', ')} dropped (give the copy its own: vmadm update ${result.uuid} update_nics=...)`
      : '';
    const vrrp = nic.droppedVrid !== undefined ? `; VRRP VRID ${nic.droppedVrid} dropped (the original keeps it)` : '';
    const allowed = nic.droppedAllowedIps?.length ? `; allowed_ips ${nic.droppedAllowedIps.join(', ')} dropped` : '';
    return `${nic.interface}: MAC ${nic.oldMac} -> ${nic.newMac ?? '(chosen by vmadm)'}${dropped}${vrrp}${allowed}`;
  });
}
