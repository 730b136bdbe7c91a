import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import { CommandError, type Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { stderrLog, type Log } from '../log.js';
import { humanBytes } from '../report/render.js';
import { BackupHostSource } from '../restore/backup-host-source.js';
import { guidsOf } from '../restore/drill-compare.js';
import { drillVm, type DrillContext } from '../restore/drill.js';
import { DRILL_DIRECTORY, writeDrillRecord, type DrillRecord } from '../restore/drill-record.js';
import { RestoreError } from '../restore/restore-error.js';
import type { BackupSet, RestoreSource } from '../restore/source.js';
import type { VmCatalog } from '../s3/catalog.js';
import { isValidSnapshotPart } from '../zfs/names.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, chooseTarget, connectBackupHost, sshTarget, UsageError } from './session.js';

export interface DrillFlags {
  config?: string;
  target?: string;
  scratch?: string;
  snapshot?: string;
  json?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
}

/**
 * `zonecopy drill <uuid>`: a restore drill of the VM's newest complete backup set (or --snapshot)
 * from one target (--target, else the first configured) into a scratch dataset here; the result is
 * kept for `check` and the backup report. Exit 0 when it passed, 1 when something differed or failed.
 */
export async function drillCommand(uuid: string, flags: DrillFlags): Promise<number> {
  checkUuids([uuid]);
  if (flags.snapshot !== undefined && !isValidSnapshotPart(flags.snapshot))
    throw new UsageError(`--snapshot ${JSON.stringify(flags.snapshot)} is not a snapshot name`);
  const config = loadConfig(flags.config ?? defaultConfigPath());
  const selected = selectTargets(config, flags.target);
  if ('error' in selected) throw new UsageError(selected.error);
  const target = selected[0]!;
  chooseTarget(target.config, target.type);
  const dryRun = Boolean(flags.dryRun);
  const log = stderrLog(Boolean(flags.verbose));
  const local = new LocalHost(dryRun);
  const opened = await openDrillSource(target, dryRun, log);
  try {
    const context = { local, log, target: target.name, ...opened.context };
    const request = { uuid, snapshot: flags.snapshot, ...(flags.scratch ? { scratch: flags.scratch } : {}) };
    let record: DrillRecord;
    try {
      record = await drillVm(request, context);
    } catch (error) {
      if (!(error instanceof RestoreError || error instanceof CommandError)) throw error;
      process.stderr.write(`zonecopy drill: ${error.message}\n`);
      return EXIT_FAILED;
    }
    if (!dryRun) writeDrillRecord(DRILL_DIRECTORY, record);
    if (flags.json) process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    else process.stdout.write(`${renderDrill(record, dryRun).join('\n')}\n`);
    if (record.result === 'failed' && !flags.json)
      process.stderr.write(`zonecopy drill: VM ${uuid} set ${record.snapshot}: ${record.problems.join('; ')}\n`);
    return record.result === 'ok' ? EXIT_OK : EXIT_FAILED;
  } finally {
    await opened.close();
    await local.close();
  }
}

/** The drill's summary line, then one line per dataset. Pure. */
export function renderDrill(record: DrillRecord, dryRun = false): string[] {
  if (dryRun) return [`[dry run] would drill VM ${record.vm} from ${record.target} backup set ${record.snapshot}`];
  const verdict = record.result === 'ok' ? 'passed' : 'FAILED';
  return [
    `drill of VM ${record.vm} from ${record.target} backup set ${record.snapshot}: ${verdict} in ${record.seconds.toFixed(1)} s (RTO ${record.rtoSeconds.toFixed(1)} s, ${humanBytes(record.bytes)} received)`,
    ...record.datasets.map((d) => `  ${d.source}  ${d.type}  ${d.check}${d.note ? `: ${d.note}` : ''}`),
    ...record.problems
      .filter((p) => !record.datasets.some((d) => p.startsWith(`${d.source}: `)))
      .map((p) => `  error: ${p}`),
  ];
}

type SourceContext = Pick<DrillContext<BackupSet>, 'source' | 'backupGuids'>;

async function openDrillSource(
  target: ResolvedTarget,
  dryRun: boolean,
  log: Log,
): Promise<{ context: SourceContext; close(): Promise<void> }> {
  if (target.type === 's3') return { context: await bucketSource(target.config, log), close: async () => {} };
  const remote = await connectBackupHost(target.config, { dryRun });
  return { context: backupHostSource(remote, target.config, log), close: () => remote.close() };
}

/** The backup host's own guids of the set's snapshots, in one `zfs get`. */
function backupHostSource(remote: Host, config: Config, log: Log): SourceContext {
  const paths = { basePath: sshTarget(config).basePath, specDirectory: config.backupConfigurationDestinationPath };
  return {
    source: new BackupHostSource(remote, paths, log),
    backupGuids: async (set: BackupSet) => {
      const there = await guidsOf(
        remote,
        set.datasets.map((d) => `${d.backup}@${set.snapshot}`),
      );
      return new Map(set.datasets.map((d) => [d.source, there.get(`${d.backup}@${set.snapshot}`) ?? '']));
    },
  };
}

/**
 * The guids the bucket's catalog recorded for the set's newest stream of each dataset (its key is
 * `dataset.backup`): the object store's set carries its catalog. Imported only when used (the AWS SDK is large).
 */
async function bucketSource(config: Config, log: Log): Promise<SourceContext> {
  const { ObjectStoreSource, S3Store } = await import('../s3/index.js');
  const source: RestoreSource = new ObjectStoreSource(new S3Store(config.s3!), config.s3!, log);
  const backupGuids = async (set: BackupSet) => {
    const catalog = (set as BackupSet & { catalog?: VmCatalog }).catalog;
    return new Map(set.datasets.map((d) => [d.source, catalog?.streams.get(d.backup)?.guid ?? '']));
  };
  return { source, backupGuids };
}
