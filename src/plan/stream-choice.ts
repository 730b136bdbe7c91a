import type { SendSpec } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot } from '../zfs/names.js';

/**
 * What a dataset's stream is built on, decided once for every target (the backup host, object
 * storage): the base of an incremental, a clone's origin, and whether the stream goes raw. Each
 * target says only what it holds and what it refuses; the rules here are the same for all.
 */

/**
 * The newest source snapshot the target has, compared by guid and never by name: the base of the
 * next incremental. `onTarget` holds the guids the target can build on (a bucket leaves out a stream
 * whose chain is broken).
 */
export function newestCommon<S extends { guid: string }>(
  source: readonly S[],
  onTarget: { has(guid: string): boolean },
): S | undefined {
  for (let i = source.length - 1; i >= 0; i--) if (onTarget.has(source[i]!.guid)) return source[i];
  return undefined;
}

/** A clone's origin snapshot as the source lists it. */
export interface CloneOrigin {
  clone: string;
  /** Full name, `dataset@snapshot`. */
  origin: string;
  dataset: string;
  snapshot: string;
  guid: string;
  /** The origin dataset's source state. */
  state: DatasetState;
}

/** What one target answers about a clone's origin; `Where` is how that target names it. */
export interface OriginTarget<Where> {
  /** The target has the origin snapshot already (by guid, under whatever name). */
  holds(origin: CloneOrigin): Where | undefined;
  /** A stream planned earlier this run puts it there (the second clone of one image). */
  planned(origin: CloneOrigin): Where | undefined;
  /** Why the origin cannot be sent to this target in full (then the clone goes in full). */
  refuses?(origin: CloneOrigin): string | undefined;
  /** Plans the origin's full stream before the clone's (an image, counted in the clone's report row). */
  sendFirst(origin: CloneOrigin): Where;
}

/**
 * Where the clone's stream starts on the target: its origin there already, or sent first this run;
 * undefined when the clone has to go in full (the warning says why).
 */
export function cloneOrigin<Where>(
  clone: string,
  origin: string,
  local: ReadonlyMap<string, DatasetState>,
  target: OriginTarget<Where>,
  warnings: string[],
): Where | undefined {
  const { dataset, snapshot } = splitSnapshot(origin);
  const state = local.get(dataset);
  const guid = state?.snapshots.find((s) => s.name === snapshot)?.guid;
  if (!state || !guid) {
    warnings.push(`${clone}: origin ${origin} is not visible locally; sending ${clone} in full`);
    return undefined;
  }
  const found: CloneOrigin = { clone, origin, dataset, snapshot, guid, state };
  const there = target.holds(found) ?? target.planned(found);
  if (there !== undefined) return there;
  const refusal = target.refuses?.(found);
  if (refusal) {
    warnings.push(`${clone}: ${refusal}; sending ${clone} in full`);
    return undefined;
  }
  return target.sendFirst(found);
}

/**
 * Encrypted datasets go raw (`send -w`): the target keeps only ciphertext, and neither it nor the
 * send needs the key. Where a target cannot take a raw stream, `refuses` says why: the stream then
 * goes decrypted, as before, and the warning says so.
 */
export function goesRaw(
  source: DatasetState,
  warnings: string[],
  refuses?: (source: DatasetState) => string | undefined,
): boolean {
  if (!source.encrypted) return false;
  const refusal = refuses?.(source);
  if (refusal) warnings.push(refusal);
  return !refusal;
}

export function withRaw(send: SendSpec, raw: boolean): SendSpec {
  return raw ? { ...send, raw } : send;
}
