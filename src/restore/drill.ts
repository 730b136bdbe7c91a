import type { Host } from '../host/host.js';
import { commandLine } from '../host/quote.js';
import type { Log } from '../log.js';
import { guidOf } from '../zfs/guid.js';
import { listDatasets } from '../zfs/list.js';
import { isValidDatasetName, isWithin, poolOf } from '../zfs/names.js';
import type { DrilledDataset, DrillRecord } from './drill-record.js';
import { UUID_TAIL } from './ensure-images.js';
import { besideReceiveArgv, datasetType, receiveBeside, type ReceivedBeside } from './receive-beside.js';
import { RestoreError } from './restore-error.js';
import type { BackupSet, RestoreSource, SetDataset } from './source.js';
import { treeChecksumArgv, volumeChecksumArgv } from './tree-checksum.js';
import { compareReceived } from './drill-compare.js';

export interface DrillRequest {
  uuid: string;
  snapshot?: string;
  /** The dataset drills receive below; default `<pool the VM's root dataset was backed up from>/zonecopy-drill` (`zones` when this host lacks that pool). */
  scratch?: string;
}

export interface DrillContext<S extends BackupSet> {
  local: Host;
  source: RestoreSource<S>;
  log: Log;
  /** The target's name, for the record. */
  target: string;
  /** The guid the backup has for the set's snapshot of each dataset, by source name (the backup host's, or the one the bucket's catalog recorded). */
  backupGuids(set: S): Promise<Map<string, string>>;
}

/** The scratch dataset drills use unless told otherwise: kept (canmount=off) for the next drill. */
export const SCRATCH_NAME = 'zonecopy-drill';

/**
 * A restore drill: every dataset of the set (the newest complete one, or the one asked for) is
 * received through the restore source into a child of the scratch dataset on this host, not as a
 * VM; each received snapshot's guid is compared with the backup's, and its content (a file tree's
 * checksum, a volume's bytes) with the VM's own snapshot of the set here when that still exists,
 * read through a read-only clone in the scratch, so nothing of the VM changes. The child is
 * destroyed at the end whatever happened. Returns the record to keep; never throws for a
 * difference or a failed receive, only for what stops it before anything changed here.
 */
export async function drillVm<S extends BackupSet>(
  request: DrillRequest,
  context: DrillContext<S>,
): Promise<DrillRecord> {
  const { local, source, log } = context;
  const started = Date.now();
  const set = await source.readSet(request.uuid, request.snapshot);
  const scratch = request.scratch ?? `${await defaultPool(set, local)}/${SCRATCH_NAME}`;
  if (!isValidDatasetName(scratch) || scratch.includes('@'))
    throw new RestoreError(`--scratch ${JSON.stringify(scratch)} is not a dataset name (such as zones/zonecopy-drill)`);
  const overlapping = set.datasets.find((d) => isWithin(scratch, d.source));
  if (overlapping)
    throw new RestoreError(
      `--scratch ${scratch} lies inside the VM's dataset ${overlapping.source}; a drill receives beside the VM, never in it`,
    );
  log.info(`drill of ${request.uuid}: backup set ${set.snapshot} from ${source.label} into ${scratch}`);
  // each stream's sha256 is checked as it is received: reading them all first would fetch them twice
  await source.verify(set, { readStreams: false });
  const run = `${scratch}/${request.uuid}-${set.snapshot}`;
  if (local.dryRun) return dryRunDrill(set, run, scratch, context, started);

  await ensureScratch(scratch, run, local, log);
  const datasets: DrilledDataset[] = [];
  const problems: string[] = [];
  let rtoSeconds = 0;
  const mounted: string[] = [];
  try {
    await local.run(['zfs', 'create', '-o', 'canmount=off', run], { mutates: true });
    const received: Array<{ dataset: SetDataset; beside?: ReceivedBeside }> = [];
    for (const [i, dataset] of set.datasets.entries()) {
      try {
        // raw (ciphertext) has no key here, so it cannot be mounted and is compared by guid only
        const beside = await receiveBeside(set, dataset, `${run}/d${i}`, context, { mountReadOnly: !dataset.raw });
        if (beside.mountpoint) mounted.push(beside.mountpoint);
        received.push({ dataset, beside });
      } catch (error) {
        const why = `${dataset.source}: not received: ${(error as Error).message}`;
        problems.push(why);
        received.push({ dataset });
      }
    }
    rtoSeconds = (Date.now() - started) / 1000;
    const subjects = received.flatMap(({ dataset, beside }, i) =>
      beside ? [{ dataset, beside, cloneName: `${run}/l${i}` }] : [],
    );
    const compared = await compareReceived(subjects, set.snapshot, await context.backupGuids(set), local, mounted);
    for (const { dataset, beside } of received) {
      const checked = compared.find((c) => c.source === dataset.source) ?? {
        source: dataset.source,
        type: datasetType(set.spec, dataset.source),
        check: 'failed' as const,
        note: 'not received',
        bytes: beside?.bytes ?? 0,
      };
      if (beside && (checked.check === 'differs' || checked.check === 'failed'))
        problems.push(`${dataset.source}: ${checked.note}`);
      datasets.push(checked);
    }
  } catch (error) {
    problems.push((error as Error).message);
  } finally {
    const removed = await removeRun(run, mounted, local);
    if (removed) problems.push(removed);
  }
  return {
    vm: request.uuid,
    ...(typeof set.spec.alias === 'string' ? { alias: set.spec.alias } : {}),
    at: new Date().toISOString(),
    target: context.target,
    snapshot: set.snapshot,
    result: problems.length ? 'failed' : 'ok',
    problems,
    rtoSeconds,
    seconds: (Date.now() - started) / 1000,
    bytes: datasets.reduce((sum, d) => sum + d.bytes, 0),
    datasets,
  };
}

/**
 * The pool the VM's root dataset was on when it was backed up, when this host has it (as a VM
 * restored here would be); `zones` otherwise. Read from the set: no vmadm call.
 */
async function defaultPool(set: BackupSet, local: Host): Promise<string> {
  const root = set.spec.zfs_filesystem;
  const pool = typeof root === 'string' && root ? poolOf(root) : 'zones';
  return (await listDatasets(local, [], { withoutSnapshots: [pool] })).has(pool) ? pool : 'zones';
}

/** The scratch dataset, made once (never mounted) and kept; a run's child left by a drill that was killed goes first. */
async function ensureScratch(scratch: string, run: string, local: Host, log: Log): Promise<void> {
  const state = await listDatasets(local, [], { withoutSnapshots: [scratch, run] });
  if (!state.has(scratch)) await local.run(['zfs', 'create', '-p', '-o', 'canmount=off', scratch], { mutates: true });
  if (state.has(run)) {
    log.warn(`${run} is left from an earlier drill that did not finish: destroying it`);
    await local.run(['zfs', 'destroy', '-r', '-f', run], { mutates: true });
  }
}

/**
 * Destroys the run's child (received datasets and clones) and the mountpoint directories ZFS made
 * for them (rmdir: only empty ones). Returns what went wrong, so a failed clean-up is reported.
 */
async function removeRun(run: string, mounted: readonly string[], local: Host): Promise<string | undefined> {
  const where = await local.run(['zfs', 'get', '-H', '-o', 'value', 'mountpoint', run], {
    mutates: false,
    allowExitCodes: [1],
  });
  if (where.exitCode !== 0) return undefined;
  const destroyed = await local.run(['zfs', 'destroy', '-r', '-f', run], { mutates: true, allowExitCodes: [1] });
  const runDirectory = where.stdout.trim().startsWith('/') ? [where.stdout.trim()] : [];
  const directories = [...mounted.filter((m) => m.startsWith('/')), ...runDirectory];
  // leaves first, then the run's own: rmdir goes on past one it cannot remove
  if (directories.length) await local.run(['rmdir', ...directories], { mutates: true, allowExitCodes: [1, 2] });
  if (destroyed.exitCode === 0) return undefined;
  return `the drill's ${run} could not be destroyed: ${destroyed.stderr.trim()}. Remove it by hand: zfs destroy -r ${run}`;
}

/** What a drill would run, printed through the local host's dry run; nothing is created or received. */
async function dryRunDrill<S extends BackupSet>(
  set: S,
  run: string,
  scratch: string,
  context: DrillContext<S>,
  started: number,
): Promise<DrillRecord> {
  const { local, source } = context;
  const state = await listDatasets(local, [], { withoutSnapshots: [scratch] });
  if (!state.has(scratch)) await local.run(['zfs', 'create', '-p', '-o', 'canmount=off', scratch], { mutates: true });
  await local.run(['zfs', 'create', '-o', 'canmount=off', run], { mutates: true });
  for (const [i, dataset] of set.datasets.entries()) {
    const into = `${run}/d${i}`;
    const type = datasetType(set.spec, dataset.source);
    const origin = await sameOrigin(dataset, into, local);
    const argv = (first: boolean) => besideReceiveArgv(into, { first, type, origin, mountReadOnly: !dataset.raw });
    for (const line of source.describeReceive(set, dataset, { name: into, fromOrigin: origin !== undefined, argv }))
      local.skipped(line);
    const reference = `${dataset.source}@${set.snapshot}`;
    const check = type === 'volume' ? volumeChecksumArgv : treeChecksumArgv;
    if (await guidOf(local, reference)) {
      local.skipped(`zfs clone -o readonly=on ${reference} ${run}/l${i}`);
      local.skipped(`compare ${commandLine(check(`<${into}>`))} with the same of ${run}/l${i}`);
    } else local.skipped(`compare the guid of ${into}@${set.snapshot} with the backup's (no ${reference} here)`);
  }
  await local.run(['zfs', 'destroy', '-r', '-f', run], { mutates: true });
  return {
    vm: set.vm,
    at: new Date().toISOString(),
    target: context.target,
    snapshot: set.snapshot,
    result: 'ok',
    problems: [],
    rtoSeconds: 0,
    seconds: (Date.now() - started) / 1000,
    bytes: 0,
    datasets: set.datasets.map((d) => ({
      source: d.source,
      type: datasetType(set.spec, d.source),
      check: 'guid-only',
      bytes: 0,
    })),
  };
}

/** The local image snapshot a clone would be received from (as receiveBeside picks it), for the dry run's lines. */
async function sameOrigin(dataset: SetDataset, into: string, local: Host): Promise<string | undefined> {
  const image = dataset.origin && UUID_TAIL.exec(dataset.origin.dataset)?.[1];
  if (!image || !dataset.origin) return undefined;
  const expected = `${poolOf(into)}/${image}@${dataset.origin.snapshot}`;
  return (await guidOf(local, expected)) === dataset.origin.guid ? expected : undefined;
}
