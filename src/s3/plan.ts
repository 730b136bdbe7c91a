import type { Problem } from '../plan/backup-plan.js';
import { inGroup } from '../plan/rotation.js';
import type { SendSpec } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot } from '../zfs/names.js';
import { chainOf, streamsOf, type VmCatalog } from './catalog.js';
import { streamKey, type Compression, type StoredStream } from './keys.js';

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

export interface DeleteObjectsStep {
  kind: 'delete-objects';
  dataset: string;
  keys: string[];
}

export type S3Step = UploadStep | DeleteObjectsStep;

export interface S3PlanInput {
  vm: string;
  prefix: string;
  datasets: readonly string[];
  /** Source state of the VM datasets and of the origins of its clones. */
  local: ReadonlyMap<string, DatasetState>;
  catalog: VmCatalog;
  snapshot: string;
  group: string;
  compression: Compression;
  encrypted: boolean;
  remoteLimit?: number;
  /** Start a new chain (full, or from the clone's origin) once a chain has this many streams. */
  fullEvery?: number;
}

export interface S3Plan {
  steps: S3Step[];
  problems: Problem[];
  warnings: string[];
}

/**
 * From the VM's local snapshots and what the bucket holds to the run's steps (pure). Each dataset
 * goes as an incremental from the newest local snapshot whose guid the bucket has with an unbroken
 * chain; else in full (a clone: from its origin, whose stream is stored first when missing).
 * Rotation keeps the group's newest `remoteLimit` streams and every stream they depend on.
 */
export function planS3Backup(input: S3PlanInput): S3Plan {
  const warnings: string[] = [];
  const steps: S3Step[] = [];
  const rotations: S3Step[] = [];
  const planned = new Set<string>();
  for (const dataset of input.datasets) {
    const local = input.local.get(dataset)!;
    const stored = streamsOf(input.catalog, dataset);
    const intact = stored.filter((s) => !chainOf(input.catalog, s).missing);
    const intactGuids = new Map(intact.map((s) => [s.guid, s]));
    const base = [...local.snapshots].reverse().find((s) => intactGuids.has(s.guid));
    const chainLength = base ? chainOf(input.catalog, intactGuids.get(base.guid)!).chain.length : 0;
    const newGuid = 'pending';
    const stream = (parent?: StoredStream['parent']): StoredStream => ({
      key: streamKey(input.prefix, input.vm, dataset, input.snapshot),
      dataset,
      snapshot: input.snapshot,
      guid: newGuid,
      createtxg: 0,
      parent,
      vm: input.vm,
      compression: input.compression,
      encrypted: input.encrypted,
    });
    const to = `${dataset}@${input.snapshot}`;
    // an encrypted dataset's blocks as they are on disk: the bucket never sees them decrypted, the send needs no key
    const raw = local.encrypted ? { raw: true } : {};
    if (base && (input.fullEvery === undefined || chainLength < input.fullEvery)) {
      steps.push({
        kind: 'upload',
        vmDataset: dataset,
        carriesImage: false,
        send: { from: `${dataset}@${base.name}`, to, ...raw },
        stream: stream({ dataset, snapshot: base.name, guid: base.guid }),
      });
    } else if (local.origin) {
      const origin = planOrigin(dataset, local.origin, input, steps, planned, warnings);
      steps.push(
        origin
          ? {
              kind: 'upload',
              vmDataset: dataset,
              carriesImage: false,
              send: { from: local.origin, to, ...raw },
              stream: stream(origin),
            }
          : { kind: 'upload', vmDataset: dataset, carriesImage: false, send: { to, ...raw }, stream: stream() },
      );
    } else {
      steps.push({ kind: 'upload', vmDataset: dataset, carriesImage: false, send: { to, ...raw }, stream: stream() });
    }
    if (stored.length > intact.length)
      warnings.push(
        `${dataset}: ${stored.length - intact.length} stored stream(s) have a missing parent and cannot be restored; they are left in place`,
      );

    const upload = steps[steps.length - 1] as UploadStep;
    const deletable = objectsToRotate(input, stored, upload);
    if (deletable.length > 0) rotations.push({ kind: 'delete-objects', dataset, keys: deletable });
  }
  steps.push(...rotations);
  return { steps, problems: [], warnings };
}

/** The origin's stream, stored once per image in the VM's prefix; returns the parent to use, or undefined to go in full. */
function planOrigin(
  clone: string,
  origin: string,
  input: S3PlanInput,
  steps: S3Step[],
  planned: Set<string>,
  warnings: string[],
): StoredStream['parent'] {
  const { dataset, snapshot } = splitSnapshot(origin);
  const originLocal = input.local.get(dataset);
  const guid = originLocal?.snapshots.find((s) => s.name === snapshot)?.guid;
  if (!guid) {
    warnings.push(`${clone}: origin ${origin} is not visible locally; sending ${clone} in full`);
    return undefined;
  }
  const stored = [...input.catalog.streams.values()].some((s) => s.dataset === dataset && s.guid === guid);
  if (!stored && !planned.has(origin)) {
    planned.add(origin);
    steps.push({
      kind: 'upload',
      vmDataset: clone,
      carriesImage: true,
      send: { to: origin, ...(originLocal?.encrypted ? { raw: true } : {}) },
      stream: {
        key: streamKey(input.prefix, input.vm, dataset, snapshot),
        dataset,
        snapshot,
        guid,
        createtxg: 0,
        vm: input.vm,
        compression: input.compression,
        encrypted: input.encrypted,
      },
    });
  }
  return { dataset, snapshot, guid };
}

/**
 * The group's streams beyond the newest `remoteLimit` (counting the one this run adds), minus
 * every stream a kept one still needs (its chain back to a full stream).
 */
function objectsToRotate(input: S3PlanInput, stored: readonly StoredStream[], upload: UploadStep): string[] {
  if (input.remoteLimit === undefined) return [];
  const members = stored.filter((s) => inGroup(s.snapshot, input.group) && s.snapshot !== input.snapshot);
  const keep = members.slice(Math.max(0, members.length - (input.remoteLimit - 1)));
  const needed = new Set<string>();
  const parentsOf = (s: StoredStream) => chainOf(input.catalog, s).chain.map((c) => c.key);
  for (const s of keep) parentsOf(s).forEach((k) => needed.add(k));
  const parent = upload.stream.parent;
  const base = parent && parent.dataset === upload.vmDataset ? stored.find((s) => s.guid === parent.guid) : undefined;
  if (base) parentsOf(base).forEach((k) => needed.add(k));
  return members.filter((s) => !needed.has(s.key)).map((s) => s.key);
}
