import type { Problem } from '../plan/backup-plan.js';
import type { Retention } from '../plan/retention.js';
import { inGroup, thinGroup } from '../plan/rotation.js';
import type { HoldStep } from '../plan/steps.js';
import { cloneOrigin, goesRaw, newestCommon, withRaw, type CloneOrigin } from '../plan/stream-choice.js';
import type { SendSpec } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot } from '../zfs/names.js';
import { chainOf, streamsOf, type VmCatalog } from './catalog.js';
import { streamFromMetadata, streamKey, type Compression, type StoredStream } from './keys.js';
import type { Journal } from './upload.js';

/** One stream to store: `zfs send` of `send`, compressed (and encrypted), as one object. */
export interface UploadStep {
  kind: 'upload';
  /** The VM dataset whose report row this upload counts in (for an image stored as a clone's origin: the clone). */
  vmDataset: string;
  /** The stream is a clone's origin (an image), not one of the VM's datasets. */
  carriesImage: boolean;
  send: SendSpec;
  /** What the object will say of itself; bytes and sha256 are filled in once stored. */
  stream: StoredStream;
}

/** The bucket's thinning of one dataset's streams. */
export interface DeleteObjectsStep {
  kind: 'delete-objects';
  dataset: string;
  keys: string[];
  /** Every other stream of the group, by key, and why it stays (printed by --dry-run). */
  kept: Array<{ name: string; why: string }>;
}

/** The rest of an upload an earlier run left unfinished, sent from the parts the bucket already has. */
export interface FinishUploadStep {
  kind: 'finish-upload';
  /** The VM dataset whose report row it counts in (a clone's for its origin); absent for a dataset this run does not back up. */
  vmDataset?: string;
  /** The stream is a clone's origin (an image), not one of the VM's datasets. */
  carriesImage: boolean;
  journal: Journal;
  /** What the object says of itself; bytes and sha256 are filled in once stored. */
  stream: StoredStream;
}

/** An unfinished upload whose stream cannot be made again (its snapshot is gone): aborted, its journal dropped. */
export interface AbandonUploadStep {
  kind: 'abandon-upload';
  journal: Journal;
}

/** zonecopy's hold moves to the snapshots just stored (on this host: the bucket has no holds). */
export interface MoveHoldStep {
  kind: 'move-hold';
  /** The hold and the release, both on the local side. */
  holds: HoldStep[];
}

export type S3Step = FinishUploadStep | AbandonUploadStep | UploadStep | MoveHoldStep | DeleteObjectsStep;

export interface S3PlanInput {
  vm: string;
  prefix: string;
  datasets: readonly string[];
  /** Source state of the VM datasets and of the origins of its clones. */
  local: ReadonlyMap<string, DatasetState>;
  catalog: VmCatalog;
  /** Uploads earlier runs left unfinished in this VM's prefix (their journals on this host). */
  pending: readonly Journal[];
  snapshot: string;
  group: string;
  compression: Compression;
  encrypted: boolean;
  /** The bucket's retention of the group; unset: nothing is deleted. */
  remoteRetention?: Retention;
  /** Seconds: ages count back from here (the run's snapshot time, rotation.ts thinningNow). */
  now?: number;
  /** Hold the newest snapshot the bucket has on this host with this tag; `localHeld` says where it is now. */
  holds?: { tag: string; localHeld: ReadonlySet<string> };
  /** Start a new chain (full, or from the clone's origin) once a chain has this many streams. */
  fullEvery?: number;
}

export interface S3Plan {
  steps: S3Step[];
  problems: Problem[];
  warnings: string[];
  /** The bucket as the plan sees it: with each unfinished upload it finishes. */
  catalog: VmCatalog;
  /** Local snapshots (full names) whose hold this run moves off. */
  releasing: Set<string>;
  /** Local snapshots this run's streams start from or finish, and why: local thinning keeps them. */
  needsLocal: Map<string, string>;
}

/**
 * From the VM's local snapshots and what the bucket holds to the run's steps (pure). Unfinished
 * uploads of earlier runs come first, and the rest is planned as if each is finished. Each dataset
 * goes as an incremental from the newest local snapshot whose guid the bucket has with an unbroken
 * chain; else in full (a clone: from its origin, whose stream is stored first when missing).
 * Thinning keeps what the retention keeps and every stream a kept one depends on.
 */
export function planS3Backup(planning: S3PlanInput): S3Plan {
  const finishing = planFinishes(planning);
  const input: S3PlanInput = { ...planning, catalog: finishing.catalog };
  const warnings: string[] = finishing.warnings;
  const steps: S3Step[] = [...finishing.steps];
  const rotations: S3Step[] = [];
  const needsLocal = new Map<string, string>();
  for (const step of finishing.steps) {
    if (step.kind !== 'finish-upload') continue;
    const { stream } = step;
    needsLocal.set(`${stream.dataset}@${stream.snapshot}`, 'an unfinished upload is finished from it');
    if (stream.parent)
      needsLocal.set(
        `${stream.parent.dataset}@${stream.parent.snapshot}`,
        'an unfinished upload is incremental from it',
      );
  }
  const hold: HoldStep | undefined = input.holds && {
    kind: 'hold',
    side: 'local',
    tag: input.holds.tag,
    snapshots: [],
    others: [],
  };
  const release: HoldStep | undefined = hold && { ...hold, kind: 'release', snapshots: [] };
  const releasing = new Set<string>();
  for (const dataset of input.datasets) {
    const local = input.local.get(dataset)!;
    const stored = streamsOf(input.catalog, dataset);
    const intact = stored.filter((s) => !chainOf(input.catalog, s).missing);
    const intactGuids = new Map(intact.map((s) => [s.guid, s]));
    const base = newestCommon(local.snapshots, intactGuids);
    const chainLength = base ? chainOf(input.catalog, intactGuids.get(base.guid)!).chain.length : 0;
    const to = `${dataset}@${input.snapshot}`;
    // the bucket takes any raw stream: it never sees the blocks decrypted, and the send needs no key
    const raw = goesRaw(local, warnings);
    let send: SendSpec = { to };
    let parent: StoredStream['parent'];
    if (base && (input.fullEvery === undefined || chainLength < input.fullEvery)) {
      send = { from: `${dataset}@${base.name}`, to };
      parent = { dataset, snapshot: base.name, guid: base.guid };
    } else if (local.origin) {
      parent = planOrigin(dataset, local.origin, input, steps, warnings);
      if (parent) send = { from: local.origin, to };
    }
    const upload: UploadStep = {
      kind: 'upload',
      vmDataset: dataset,
      carriesImage: false,
      send: withRaw(send, raw),
      stream: { ...newStream(input, dataset, input.snapshot, 'pending'), parent },
    };
    steps.push(upload);
    if (parent?.dataset === dataset)
      needsLocal.set(
        `${dataset}@${parent.snapshot}`,
        'the newest snapshot the bucket has: the stream is incremental from it',
      );
    if (hold && release) {
      hold.snapshots.push({ dataset, snapshot: to });
      for (const s of local.snapshots) {
        const full = `${dataset}@${s.name}`;
        if (!input.holds!.localHeld.has(full)) continue;
        release.snapshots.push({ dataset, snapshot: full });
        releasing.add(full);
      }
    }
    if (stored.length > intact.length)
      warnings.push(
        `${dataset}: ${stored.length - intact.length} stored stream(s) have a missing parent and cannot be restored; they are left in place`,
      );

    const thinning = thinStreams(input, stored, upload);
    if (thinning) rotations.push(thinning);
  }
  const moves = [hold, release].filter((h): h is HoldStep => h !== undefined && h.snapshots.length > 0);
  // a -r hold or release never reaches below a dataset without an entry
  for (const h of moves) h.others = input.datasets.filter((d) => !h.snapshots.some((e) => e.dataset === d));
  if (moves.length > 0) steps.push({ kind: 'move-hold', holds: moves });
  steps.push(...rotations);
  return { steps, problems: [], warnings, catalog: input.catalog, releasing, needsLocal };
}

/**
 * Finish-or-abandon for every unfinished upload: finished when its snapshot (and the one it is
 * incremental from) is still here by name and guid, since its pipeline names them; abandoned
 * otherwise. The catalog returned holds each stream to be finished.
 */
function planFinishes(input: S3PlanInput): {
  steps: Array<FinishUploadStep | AbandonUploadStep>;
  catalog: VmCatalog;
  warnings: string[];
} {
  const steps: Array<FinishUploadStep | AbandonUploadStep> = [];
  const warnings: string[] = [];
  const streams = new Map(input.catalog.streams);
  const here = (s: { dataset: string; snapshot: string; guid: string }) =>
    input.local.get(s.dataset)?.snapshots.some((l) => l.name === s.snapshot && (!s.guid || l.guid === s.guid));
  for (const journal of input.pending) {
    const stream = streamFromMetadata(journal.key, journal.metadata);
    const why =
      !stream || !here(stream)
        ? 'the snapshot of an unfinished upload is gone'
        : stream.parent && !here(stream.parent)
          ? `${stream.parent.dataset}@${stream.parent.snapshot}, which an unfinished upload is incremental from, is gone`
          : undefined;
    if (!stream || why) {
      warnings.push(`${journal.key}: ${why}; aborting that upload`);
      steps.push({ kind: 'abandon-upload', journal });
      continue;
    }
    const origin = (d: string) => input.local.get(d)?.origin;
    const clone = input.datasets.find((d) => origin(d) && splitSnapshot(origin(d)!).dataset === stream.dataset);
    const own = input.datasets.includes(stream.dataset);
    const vmDataset = own ? stream.dataset : clone;
    steps.push({ kind: 'finish-upload', vmDataset, carriesImage: !own && clone !== undefined, journal, stream });
    // its stored size is known once it is finished; planning needs only its place in the chain
    streams.set(stream.key, { ...stream, size: 0 });
  }
  return { steps, catalog: { ...input.catalog, streams }, warnings };
}

/** What a stream this run stores will say of itself (a new snapshot's guid is known once sent). */
function newStream(input: S3PlanInput, dataset: string, snapshot: string, guid: string): StoredStream {
  return {
    key: streamKey(input.prefix, input.vm, dataset, snapshot),
    dataset,
    snapshot,
    guid,
    createtxg: 0,
    vm: input.vm,
    compression: input.compression,
    encrypted: input.encrypted,
  };
}

/** The origin's stream, stored once per image in the VM's prefix; returns the parent to use, or undefined to go in full. */
function planOrigin(
  clone: string,
  origin: string,
  input: S3PlanInput,
  steps: S3Step[],
  warnings: string[],
): StoredStream['parent'] {
  const parentOf = (o: CloneOrigin) => ({ dataset: o.dataset, snapshot: o.snapshot, guid: o.guid });
  const isOrigin = (o: CloneOrigin) => (s: S3Step) => s.kind === 'upload' && s.carriesImage && s.send.to === o.origin;
  return cloneOrigin(
    clone,
    origin,
    input.local,
    {
      holds: (o) =>
        [...input.catalog.streams.values()].some((s) => s.dataset === o.dataset && s.guid === o.guid)
          ? parentOf(o)
          : undefined,
      planned: (o) => (steps.some(isOrigin(o)) ? parentOf(o) : undefined),
      sendFirst: (o) => {
        steps.push({
          kind: 'upload',
          vmDataset: clone,
          carriesImage: true,
          send: withRaw({ to: origin }, goesRaw(o.state, warnings)),
          stream: newStream(input, o.dataset, o.snapshot, o.guid),
        });
        return parentOf(o);
      },
    },
    warnings,
  );
}

/**
 * The bucket's thinning of one dataset: the streams the retention drops (counting the one this
 * run adds, which replaces any stored one of its name), minus every stream a kept one still
 * needs (its chain back to a full stream). A stream is timed by its name, else by its snapshot's
 * creation here, else by its set's.
 */
function thinStreams(
  input: S3PlanInput,
  stored: ReadonlyArray<StoredStream>,
  upload: UploadStep,
): DeleteObjectsStep | undefined {
  const dataset = upload.vmDataset;
  const others = stored.filter((s) => s.snapshot !== input.snapshot);
  const here = input.local.get(dataset)?.snapshots;
  const setTime = (name: string) => {
    const set = input.catalog.sets.find((m) => m.snapshot === name);
    return set ? Math.floor(Date.parse(set.createdAt) / 1000) : undefined;
  };
  const thinning = thinGroup({
    on: dataset,
    snapshots: [
      ...others.map((s) => ({
        name: s.snapshot,
        creation: here?.find((l) => l.guid === s.guid)?.creation ?? setTime(s.snapshot),
      })),
      { name: input.snapshot, creation: input.now },
    ],
    group: input.group,
    retention: input.remoteRetention,
    protect: new Map([[input.snapshot, "this run's stream: the newest"]]),
    now: input.now ?? 0,
  });
  if (!thinning) return undefined;
  const dropping = new Set(thinning.destroy);
  const kept = others.filter((s) => inGroup(s.snapshot, input.group) && !dropping.has(s.snapshot));
  const parent = upload.stream.parent;
  const base = parent && parent.dataset === dataset ? stored.find((s) => s.guid === parent.guid) : undefined;
  const chains = [...kept, ...(base ? [base] : [])].map((s) => chainOf(input.catalog, s).chain);
  const needed = new Set(chains.flat().map((s) => s.key));
  const keyOf = (name: string) => others.find((s) => s.snapshot === name)?.key ?? upload.stream.key;
  return {
    kind: 'delete-objects',
    dataset,
    keys: others.filter((s) => dropping.has(s.snapshot) && !needed.has(s.key)).map((s) => s.key),
    kept: [
      ...thinning.keep.map((k) => ({ name: keyOf(k.name), why: k.why })),
      ...others
        .filter((s) => dropping.has(s.snapshot) && needed.has(s.key))
        .map((s) => ({ name: s.key, why: 'a kept stream is incremental from it' })),
    ],
  };
}
