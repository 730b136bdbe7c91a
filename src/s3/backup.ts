import type { ConsistencyRecord } from '../backup/hook-run.js';
import { describePipeline, mutate, type Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import {
  datasetRow,
  preparedTarget,
  emptyTally,
  type DatasetTally,
  type PreparedTarget,
  type Target,
  type TargetOutcome,
  type VmRun,
} from '../target/target.js';
import { moveHold } from '../backup/hold-move.js';
import type { Retention } from '../plan/retention.js';
import { thinningNow } from '../plan/rotation.js';
import { sendArgv } from '../zfs/commands.js';
import { snapshotsHeldBy } from '../zfs/holds.js';
import { readCatalog, type VmCatalog } from './catalog.js';
import { setKey, streamMetadata, vmPrefix, type SetManifest, type StoredStream } from './keys.js';
import { planS3Backup, type FinishUploadStep, type S3Step, type UploadStep } from './plan.js';
import type { S3Settings } from './settings.js';
import { MAX_COPY_BYTES, type ObjectStore } from './store.js';
import { compressArgv, encryptArgv, parseSendEstimate } from './streams.js';
import { abandonUpload, pendingJournals, uploadStream } from './upload.js';

export interface ObjectTargetSettings {
  remoteRetention?: Retention;
  /** Hold tag for the newest snapshot the bucket has, on this host (`zonecopy:<target>:<group>`); undefined with --no-holds. */
  holdTag?: string;
}

export interface S3BackupContext {
  local: Host;
  store: ObjectStore;
  s3: S3Settings;
  log: Log;
}

/**
 * Object storage as a backup target: one object per stream, a manifest per backup set, rotation
 * that keeps every stream a kept one depends on. The VM's snapshot and local rotation are the
 * run loop's (backup/backup-vm.ts).
 */
export class ObjectTarget implements Target {
  readonly label: string;

  readonly holdTag?: string;

  constructor(
    readonly name: string,
    private readonly context: S3BackupContext,
    private readonly settings: ObjectTargetSettings = {},
  ) {
    this.label = context.store.label;
    this.holdTag = settings.holdTag;
  }

  async prepare(run: VmRun): Promise<PreparedTarget> {
    const { local, store, s3 } = this.context;
    const { observed, uuid, snapshot } = run;
    const { holdTag } = this.settings;
    const [catalog, localHeld] = await Promise.all([
      readCatalog(store, s3.prefix, uuid),
      holdTag
        ? snapshotsHeldBy(
            local,
            holdTag,
            observed.datasets.flatMap((d) => observed.local.get(d) ?? []),
          )
        : undefined,
    ]);
    const plan = planS3Backup({
      vm: uuid,
      prefix: s3.prefix,
      datasets: observed.datasets,
      local: observed.local,
      catalog,
      pending: pendingJournals(s3.stateDirectory, vmPrefix(s3.prefix, uuid)),
      snapshot,
      group: run.group,
      compression: s3.compression,
      encrypted: Boolean(s3.gpgRecipient),
      remoteRetention: this.settings.remoteRetention,
      now: thinningNow(snapshot, run.group, run.startedAt),
      holds: holdTag && localHeld ? { tag: holdTag, localHeld } : undefined,
      fullEvery: s3.fullEvery,
    });
    const execute = async (consistency: ConsistencyRecord): Promise<TargetOutcome> => {
      const errors: string[] = [];
      // read once, by the first upload that runs: a dry run's snapshot does not exist
      let identity: Promise<void> | undefined;
      const identify = () =>
        (identity ??= fillIdentity(
          local,
          observed.datasets.map((d) => `${d}@${snapshot}`),
          plan.steps,
        ));
      const tallies = await executeSteps(plan.steps, { ...this.context, identify }, errors);
      const stored = plan.steps
        .filter((s): s is UploadStep => s.kind === 'upload' && !tallies.get(s.vmDataset)?.error)
        .map((s) => s.stream);
      const complete = observed.datasets.every((d) => !tallies.get(d)?.error);
      if (complete) {
        const { zoneConfig, images } = await run.details;
        const manifest: SetManifest = {
          format: 1,
          vm: uuid,
          snapshot,
          createdAt: run.startedAt.toISOString(),
          spec: observed.raw,
          zonecfg: zoneConfig,
          images,
          datasets: observed.datasets,
          streams: stored,
          consistency,
        };
        await store
          .putText(setKey(s3.prefix, uuid, snapshot), `${JSON.stringify(manifest, null, 2)}\n`)
          .catch((e: Error) => errors.push(`storing the set manifest failed: ${e.message}`));
      }
      await dropEmptySets(plan.catalog, tallies, this.context, errors);
      const datasets = observed.datasets.map((dataset) => {
        const tally = tallies.get(dataset);
        const upload = plan.steps.find(
          (s): s is UploadStep => s.kind === 'upload' && s.vmDataset === dataset && !s.carriesImage,
        );
        return datasetRow({ dataset, target: upload?.stream.key ?? '', snapshot, mode: tally?.mode ?? 'none', tally });
      });
      return { datasets, errors };
    };
    return preparedTarget(plan, execute);
  }
}

/** The run's context, and what fills in the new snapshots' guid and createtxg before their first upload. */
type StepContext = S3BackupContext & { identify: () => Promise<void> };

async function executeSteps(
  steps: readonly S3Step[],
  context: StepContext,
  errors: string[],
): Promise<Map<string, DatasetTally>> {
  const { store, log } = context;
  const tallies = new Map<string, DatasetTally>();
  const tally = (dataset: string) => {
    let o = tallies.get(dataset);
    if (!o) tallies.set(dataset, (o = emptyTally()));
    return o;
  };
  for (const step of steps) {
    switch (step.kind) {
      case 'finish-upload': {
        const o = step.vmDataset ? tally(step.vmDataset) : undefined;
        if (o?.error) break;
        try {
          const moved = await finishUpload(step, context);
          if (!o) break;
          o.bytes += moved.bytes;
          o.seconds += moved.seconds;
          if (!step.carriesImage) o.mode = 'resumed';
        } catch (error) {
          const why = `finishing the interrupted upload of ${step.journal.key} failed: ${(error as Error).message}`;
          if (o) o.error = why;
          else errors.push(why);
        }
        break;
      }
      case 'abandon-upload': {
        const { key } = step.journal;
        try {
          await mutate(
            context.local,
            `abort the unfinished upload of ${key} and drop its journal`,
            () => abandonUpload(store, context.s3.stateDirectory, step.journal),
            undefined,
          );
        } catch (error) {
          errors.push(`aborting the unfinished upload of ${key} failed: ${(error as Error).message}`);
        }
        break;
      }
      case 'upload': {
        const o = tally(step.vmDataset);
        if (o.error) break;
        try {
          const moved = await upload(step, context);
          // the row of a dataset whose earlier stream was finished says resumed, as on the backup host
          if (!step.carriesImage && o.mode !== 'resumed') o.mode = step.send.from ? 'incremental' : 'full';
          o.bytes += moved.bytes;
          o.seconds += moved.seconds;
        } catch (error) {
          o.error = `${step.carriesImage ? `origin ${step.send.to}: ` : ''}${(error as Error).message}`;
        }
        break;
      }
      case 'move-hold':
        await moveHold(step.holds, context.local, (dataset) => Boolean(tallies.get(dataset)?.error), errors);
        break;
      case 'delete-objects': {
        const o = tally(step.dataset);
        if (o.error) break;
        try {
          const kept = step.kept.map((k) => `keeps s3://${context.s3.bucket}/${k.name}: ${k.why}`);
          await mutate(context.local, kept, async () => undefined, undefined);
          if (step.keys.length === 0) break;
          await store.delete(step.keys);
          o.rotatedRemote.push(...step.keys);
          log.verbose(`deleted ${step.keys.join(' ')}`);
        } catch (error) {
          errors.push(`rotation in ${store.label} failed for ${step.dataset}: ${(error as Error).message}`);
        }
        break;
      }
    }
  }
  return tallies;
}

/** One stream's pipeline into one object; a dry run prints the pipeline (the host's) and starts nothing. */
async function upload(step: UploadStep, context: StepContext): Promise<{ bytes: number; seconds: number }> {
  const { local, s3 } = context;
  const pipeline = [sendArgv(step.send), ...compressArgv(s3.compression), ...encryptArgv(s3.gpgRecipient, s3)];
  const into = `${describePipeline(pipeline)} > s3://${s3.bucket}/${step.stream.key}`;
  return mutate(local, into, () => uploadNow(step, pipeline, context), { bytes: 0, seconds: 0 });
}

async function uploadNow(
  step: UploadStep,
  pipeline: Argv[],
  context: StepContext,
): Promise<{ bytes: number; seconds: number }> {
  const { local, store, s3, log } = context;
  await context.identify();
  const [zfs, verb, ...args] = sendArgv(step.send);
  const estimate = await local.run([zfs!, verb!, '-nP', ...args], { mutates: false });
  const stored = await uploadStream(store, {
    key: step.stream.key,
    metadata: streamMetadata(step.stream),
    fingerprint: JSON.stringify([step.stream.guid, step.stream.parent?.guid ?? '', pipeline]),
    estimatedBytes: parseSendEstimate(estimate.stdout) ?? 0,
    concurrency: s3.partConcurrency,
    pipeline,
    spawn: (p) => local.spawn(p),
    stateDirectory: s3.stateDirectory,
    log,
  });
  await recordChecksum(step.stream, stored, store);
  return stored;
}

/** The stored size and sha256 go into the object's own metadata too, where a single copy can (up to 5 GiB). */
async function recordChecksum(
  stream: StoredStream,
  stored: { bytes: number; sha256: string },
  store: ObjectStore,
): Promise<void> {
  stream.bytes = stored.bytes;
  stream.sha256 = stored.sha256;
  if (stored.bytes <= MAX_COPY_BYTES) await store.replaceMetadata(stream.key, streamMetadata(stream));
}

/** The rest of an upload an earlier run left unfinished, from the parts already stored; a dry run prints it. */
async function finishUpload(step: FinishUploadStep, context: StepContext): Promise<{ bytes: number; seconds: number }> {
  const { local, store, s3, log } = context;
  const { journal, stream } = step;
  const finish = async () => {
    const stored = await uploadStream(store, {
      key: journal.key,
      metadata: journal.metadata,
      fingerprint: journal.fingerprint,
      estimatedBytes: journal.estimatedBytes,
      concurrency: s3.partConcurrency,
      pipeline: journal.pipeline,
      spawn: (p) => local.spawn(p),
      stateDirectory: s3.stateDirectory,
      log,
    });
    await recordChecksum(stream, stored, store);
    log.info(`${journal.key}: finished an interrupted upload (${stored.resumedParts} part(s) were already stored)`);
    return { bytes: stored.bytes, seconds: stored.seconds };
  };
  const into = `${describePipeline(journal.pipeline)} > s3://${s3.bucket}/${journal.key} (the rest of an interrupted upload)`;
  return mutate(local, into, finish, { bytes: 0, seconds: 0 });
}

/** The new snapshots' guid and createtxg, which the streams' metadata carries: one `zfs get` for all. */
async function fillIdentity(local: Host, snapshots: readonly string[], steps: readonly S3Step[]): Promise<void> {
  const out = await local.run(['zfs', 'get', '-Hp', '-o', 'name,property,value', 'guid,createtxg', ...snapshots], {
    mutates: false,
  });
  const values = new Map<string, string>();
  for (const line of out.stdout.split('\n').filter(Boolean)) {
    const [name, property, value] = line.split('\t');
    values.set(`${name}\n${property}`, value!);
  }
  for (const step of steps) {
    if (step.kind !== 'upload' || step.carriesImage) continue;
    const full = `${step.stream.dataset}@${step.stream.snapshot}`;
    if (!snapshots.includes(full)) continue;
    step.stream.guid = values.get(`${full}\nguid`) ?? step.stream.guid;
    step.stream.createtxg = Number(values.get(`${full}\ncreatetxg`) ?? 0);
  }
}

/** A set manifest whose own snapshot's streams are all gone after rotation is deleted too (an origin it first stored stays). */
async function dropEmptySets(
  catalog: VmCatalog,
  tallies: ReadonlyMap<string, DatasetTally>,
  context: S3BackupContext,
  errors: string[],
): Promise<void> {
  const deleted = new Set([...tallies.values()].flatMap((o) => o.rotatedRemote));
  if (deleted.size === 0) return;
  const gone = (s: StoredStream) => deleted.has(s.key) || !catalog.streams.has(s.key);
  const empty = catalog.sets
    .filter((set) => set.streams.filter((s) => s.snapshot === set.snapshot).every(gone))
    .map((set) => setKey(context.s3.prefix, set.vm, set.snapshot));
  if (empty.length > 0)
    await context.store
      .delete(empty)
      .catch((e: Error) => errors.push(`deleting emptied set manifests failed: ${e.message}`));
}
