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
import { checksumOn, treeChecksumArgv, volumeChecksumArgv, volumeDevice, type Checksum } from './tree-checksum.js';

export interface DrillRequest {
  uuid: string;
  snapshot?: string;
  /** The dataset drills receive below; default `<pool of the VM's root dataset>/zonecopy-drill` (`zones` when the VM is not here). */
  scratch?: string;
}

export interface DrillContext<S extends BackupSet> {
  local: Host;
  source: RestoreSource<S>;
  log: Log;
  /** The target's name, for the record. */
  target: string;
  /** The guid the backup has for the set's snapshot of `dataset` (the backup host's, or the one the bucket's catalog recorded). */
  backupGuid(set: S, dataset: SetDataset): Promise<string>;
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
  const scratch = request.scratch ?? `${await defaultPool(request.uuid, local)}/${SCRATCH_NAME}`;
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
    for (const [i, { dataset, beside }] of received.entries()) {
      const type = datasetType(set.spec, dataset.source);
      if (!beside) {
        datasets.push({ source: dataset.source, type, check: 'failed', note: 'not received', bytes: 0 });
        continue;
      }
      const checked = await checkDataset(set, dataset, beside, `${run}/l${i}`, context, mounted);
      if (checked.check === 'differs' || checked.check === 'failed')
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

/** The guid check, then the content check against this host's snapshot of the set when there is one. */
async function checkDataset<S extends BackupSet>(
  set: S,
  dataset: SetDataset,
  beside: ReceivedBeside,
  cloneName: string,
  context: DrillContext<S>,
  mounted: string[],
): Promise<DrilledDataset> {
  const { local } = context;
  const base = { source: dataset.source, type: beside.type, bytes: beside.bytes };
  const [received, backup] = [
    await guidOf(local, `${beside.into}@${set.snapshot}`),
    await context.backupGuid(set, dataset),
  ];
  if (!received || received !== backup)
    return {
      ...base,
      check: 'differs',
      note: `received snapshot has guid ${received || '(none)'}, the backup's is ${backup || '(unknown)'}`,
    };
  const reference = `${dataset.source}@${set.snapshot}`;
  const here = await guidOf(local, reference);
  if (!here) return { ...base, check: 'guid-only', note: `no ${reference} on this host to compare content with` };
  if (dataset.raw) return { ...base, check: 'guid-only', note: 'received raw (ciphertext): no key here to read it' };
  try {
    const clone = await readOnlyClone(reference, cloneName, beside.type, local);
    if (clone.mountpoint) mounted.push(clone.mountpoint);
    const kind = beside.type === 'volume' ? 'volume' : 'tree';
    const path = (b: { mountpoint?: string; device?: string }) => (kind === 'volume' ? b.device : b.mountpoint)!;
    const got = await checksumOn(local, kind, path(beside), `the received ${beside.into}`);
    const want = await checksumOn(local, kind, path(clone), `this host's ${reference}`);
    const sameGuid = here === backup ? '' : ` (this host's ${reference} is another snapshot: guid ${here})`;
    if (got.sha256 === want.sha256)
      return { ...base, check: 'same', note: `${describeSame(kind, got)} as this host's ${reference}${sameGuid}` };
    return { ...base, check: 'differs', note: describeDifference(kind, reference, got, want) + sameGuid };
  } catch (error) {
    return { ...base, check: 'failed', note: (error as Error).message };
  }
}

function describeSame(kind: 'tree' | 'volume', got: Checksum): string {
  return kind === 'volume' ? 'volume bytes the same' : `file tree the same (${got.entries ?? '?'} entries)`;
}

/** `file tree differs from this host's zones/x@s (sha256 1a2b… received, 3c4d… here; 120 entries received, 121 here)`. Pure. */
export function describeDifference(kind: 'tree' | 'volume', reference: string, got: Checksum, want: Checksum): string {
  const digests = `sha256 ${got.sha256.slice(0, 12)}… received, ${want.sha256.slice(0, 12)}… here`;
  const entries =
    kind === 'tree' && got.entries !== want.entries ? `; ${got.entries} entries received, ${want.entries} here` : '';
  return `${kind === 'volume' ? 'volume bytes differ' : 'file tree differs'} from this host's ${reference} (${digests}${entries})`;
}

/** A read-only clone of the VM's snapshot, in the scratch: it reads the snapshot and changes nothing of the VM. */
async function readOnlyClone(
  snapshot: string,
  into: string,
  type: 'filesystem' | 'volume',
  local: Host,
): Promise<{ mountpoint?: string; device?: string }> {
  const zoned = type === 'filesystem' ? ['-o', 'zoned=off'] : [];
  await local.run(['zfs', 'clone', '-o', 'readonly=on', ...zoned, snapshot, into], { mutates: true });
  if (type === 'volume') return { device: await volumeDevice(local, into) };
  await local.run(['zfs', 'mount', into], { mutates: true });
  const got = await local.run(['zfs', 'get', '-H', '-o', 'value', 'mountpoint', into], { mutates: false });
  return { mountpoint: got.stdout.trim() };
}

/** The pool of the VM's root dataset here; `zones` when the VM is not on this host. */
async function defaultPool(uuid: string, local: Host): Promise<string> {
  const got = await local.run(['vmadm', 'get', uuid], { mutates: false, allowExitCodes: [1, 2] });
  if (got.exitCode !== 0) return 'zones';
  const root = (JSON.parse(got.stdout) as { zfs_filesystem?: unknown }).zfs_filesystem;
  return typeof root === 'string' && root ? poolOf(root) : 'zones';
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
  for (const directory of [...mounted, ...runDirectory])
    await local.run(['rmdir', directory], { mutates: true, allowExitCodes: [1, 2] });
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
