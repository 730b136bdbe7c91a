import type { ConsistencyRecord } from '../backup/hook-run.js';
import { humanBytes } from '../report/render.js';
import { chainOf, type VmCatalog } from '../s3/catalog.js';
import { isWithin } from '../zfs/names.js';
import type { TargetListing } from './across-targets.js';

/** One backup set `restore --list` shows: what `--snapshot` would restore, and how consistent it is. */
export interface ListedSet {
  snapshot: string;
  consistency: string;
  /** When the set was made (seconds since the epoch), to compare sets across targets; unknown if absent. */
  created?: number;
  record?: ConsistencyRecord;
  /** The set's datasets with their sizes, as `restore --dataset` names them (listed by `restore --list` only). */
  datasets?: ListedDataset[];
}

export interface ListedDataset {
  /** The dataset as it was backed up (`zones/<uuid>/data`). */
  name: string;
  /** Bytes; unknown when the backup does not say. */
  bytes?: number;
  /**
   * `referenced`: what dataset@set references on the backup host (about what a restore of it
   * writes); `stored`: the stored (compressed, maybe encrypted) bytes of the chain of stream
   * objects a restore of it downloads.
   */
  size: 'referenced' | 'stored';
}

const SIZE_MEANING: Record<ListedDataset['size'], string> = {
  referenced: 'referenced by the dataset at that snapshot on the backup host',
  stored: 'stored, compressed (and encrypted where configured): the stream objects a restore of the dataset downloads',
};

export function renderSetList(uuid: string, sets: readonly ListedSet[]): string {
  if (sets.length === 0) return `VM ${uuid}: no complete backup set`;
  return [
    `VM ${uuid}: ${sets.length} complete backup set(s), newest first (restore one with --snapshot NAME)`,
    ...sets.flatMap((s) => [`  ${s.snapshot}  ${s.consistency}`, ...datasetLines(s, '      ')]),
    ...sizeNotes(sets),
  ].join('\n');
}

/** Every target's sets with a target column (restore one with --target NAME --snapshot NAME). */
export function renderTargetSetList(uuid: string, listed: readonly TargetListing[]): string {
  const width = Math.max(6, ...listed.map((l) => l.target.length));
  const rows = listed.flatMap((l) =>
    'error' in l
      ? [`  ${l.target.padEnd(width)}  (not listed: ${l.error})`]
      : l.sets.flatMap((s) => [
          `  ${l.target.padEnd(width)}  ${s.snapshot}  ${s.consistency}`,
          ...datasetLines(s, `  ${' '.repeat(width)}      `),
        ]),
  );
  const count = listed.reduce((n, l) => n + ('sets' in l ? l.sets.length : 0), 0);
  return [
    `VM ${uuid}: ${count} complete backup set(s) on ${listed.length} target(s), newest first (restore one with --target NAME --snapshot NAME)`,
    `  ${'TARGET'.padEnd(width)}  SET`,
    ...rows,
    ...sizeNotes(listed.flatMap((l) => ('sets' in l ? l.sets : []))),
  ].join('\n');
}

/** A set's datasets, one a line, names aligned, each with its size. */
function datasetLines(set: ListedSet, indent: string): string[] {
  const datasets = set.datasets ?? [];
  const width = Math.max(0, ...datasets.map((d) => d.name.length));
  return datasets.map(
    (d) => `${indent}${d.name.padEnd(width)}  ${d.bytes === undefined ? 'size unknown' : humanBytes(d.bytes)}`,
  );
}

/** What the sizes shown mean, once per kind, and how to restore one dataset. */
function sizeNotes(sets: readonly ListedSet[]): string[] {
  const kinds = new Set(sets.flatMap((s) => (s.datasets ?? []).map((d) => d.size)));
  if (kinds.size === 0) return [];
  return [
    ...[...kinds].map((kind) => `sizes (${kind}): ${SIZE_MEANING[kind]}`),
    'restore one dataset beside the VM with --dataset NAME --as NEWNAME',
  ];
}

/**
 * Each set's datasets with their sizes, from one `zfs list -Hp -t snapshot -r -o name,referenced`
 * of the VM's top backup datasets (`roots`, with their names when backed up): a set has each
 * dataset below them that has its snapshot, named as it was backed up. Pure.
 */
export function backupHostDatasets(
  listing: string,
  roots: ReadonlyArray<{ source: string; backup: string }>,
  snapshots: readonly string[],
): Map<string, ListedDataset[]> {
  const bySet = new Map<string, ListedDataset[]>(snapshots.map((s) => [s, []]));
  for (const line of listing.split('\n')) {
    const [full, referenced] = line.split('\t');
    const at = full?.indexOf('@') ?? -1;
    if (!full || at < 0) continue;
    const dataset = full.slice(0, at);
    const found = bySet.get(full.slice(at + 1));
    const root = roots.find((r) => isWithin(dataset, r.backup));
    if (!found || !root) continue;
    const bytes = Number(referenced);
    found.push({
      name: root.source + dataset.slice(root.backup.length),
      ...(referenced !== undefined && Number.isFinite(bytes) ? { bytes } : {}),
      size: 'referenced',
    });
  }
  // the roots' order (vmadm's), each followed by its children
  const rank = (name: string) => roots.findIndex((r) => isWithin(name, r.source));
  for (const datasets of bySet.values())
    datasets.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
  return bySet;
}

/** The set's datasets in the bucket, each with the stored bytes of the chain of objects it needs. Pure. */
export function storedDatasets(catalog: VmCatalog, snapshot: string): ListedDataset[] {
  const set = catalog.sets.find((s) => s.snapshot === snapshot);
  return (set?.datasets ?? []).map((name) => {
    const head = [...catalog.streams.values()].find((s) => s.dataset === name && s.snapshot === snapshot);
    const found = head ? chainOf(catalog, head) : undefined;
    const chain = found && !found.missing ? found.chain : [];
    const sizes = chain.flatMap((s) => {
      const bytes = catalog.streams.get(s.key)?.size ?? s.bytes;
      return bytes === undefined ? [] : [bytes];
    });
    const known = chain.length > 0 && sizes.length === chain.length;
    return { name, ...(known ? { bytes: sizes.reduce((a, b) => a + b, 0) } : {}), size: 'stored' as const };
  });
}
