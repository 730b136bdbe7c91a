import { CommandError, type Host } from '../host/host.js';
import { depth, isWithin } from './names.js';

/** What one batched `zfs list` says about a dataset and its snapshots (oldest first). */
export interface DatasetState {
  name: string;
  type: 'filesystem' | 'volume';
  guid: string;
  /** Full origin snapshot name when the dataset is a clone. */
  origin?: string;
  /** Set when an interrupted `zfs receive -s` left partial state. */
  resumeToken?: string;
  /** Bytes written since its newest snapshot: what a snapshot taken now would add. */
  written?: number;
  /** `readonly=on` (set here or inherited) and `canmount=noauto` (volumes have no canmount): nothing mounts or writes it by accident. */
  guarded?: boolean;
  /** Space properties in bytes (0 for none), listed with `space: true`: what a snapshot needs room for. */
  space?: DatasetSpace;
  /** `encryption` is not off (its blocks are ciphertext). Undefined where ZFS has no such property. */
  encrypted?: boolean;
  /** The dataset whose key an encrypted one uses (its `encryptionroot`). */
  encryptionRoot?: string;
  snapshots: SnapshotInfo[];
}

export interface SnapshotInfo {
  /** The part after `@`. */
  name: string;
  guid: string;
  createtxg: number;
  /** Seconds since the epoch. */
  creation: number;
  /** Number of holds on the snapshot (any tag). */
  userrefs: number;
}

export interface DatasetSpace {
  refreservation: number;
  /** Bytes only the live dataset references (ZFS's unique bytes). */
  usedbydataset: number;
  available: number;
  /** A refquota caps `available`, so it then says nothing about the parent. */
  refquota: number;
  /** 0 for a filesystem. */
  volsize: number;
}

const FIELDS = [
  'name',
  'type',
  'guid',
  'createtxg',
  'creation',
  'origin',
  'receive_resume_token',
  'userrefs',
  'written',
  'readonly',
  'canmount',
  'encryption',
  'encryptionroot',
];
const ENCRYPTION_FIELDS = new Set(['encryption', 'encryptionroot']);
/** Listed only on the SmartOS side, for the check that a VM's snapshots fit (src/backup/headroom.ts). */
const SPACE_FIELDS = ['refreservation', 'usedbydataset', 'available', 'refquota', 'volsize'] as const;

/** Hosts whose ZFS has no `encryption` properties (before native encryption), listed without them from then on. */
const withoutEncryption = new WeakSet<Host>();
/** `bad property list: invalid property 'encryption'`: what such a ZFS says. */
const UNKNOWN_ENCRYPTION = /invalid property 'encryption(root)?'/;

/** The datasets, every descendant (children created inside a zone, say) and all their snapshots. */
function recursiveListArgv(datasets: readonly string[], fields: readonly string[]): string[] {
  return ['zfs', 'list', '-Hp', '-t', 'filesystem,volume,snapshot', '-r', '-o', fields.join(','), ...datasets];
}

/**
 * Without recursion, one call lists the datasets themselves and others their snapshots, side by
 * side (`-t snapshot -d 1` does not open a dataset's children, where `-t filesystem,…,snapshot
 * -d 1` lists every child of a parent that is itself named: 98 extra datasets for a zone's
 * delegated dataset). Opening a dataset that is not mounted, as received ones are, costs the
 * kernel far more than a mounted one, and one `zfs list` opens them one at a time on one CPU: 100
 * received datasets with 4 snapshots each took 13.9 s in the old single call, 5.8 s this way
 * (test guest, 2 CPUs).
 */
export function splitListArgvs(
  datasets: readonly string[],
  withSnapshots: readonly string[],
  fields: readonly string[] = FIELDS,
): string[][] {
  return [
    ['zfs', 'list', '-Hp', '-t', 'filesystem,volume', '-o', fields.join(','), ...datasets],
    ...inParts(withSnapshots).map((part) => [
      'zfs',
      'list',
      '-Hp',
      '-t',
      'snapshot',
      '-d',
      '1',
      '-o',
      fields.join(','),
      ...part,
    ]),
  ];
}

/**
 * `names` dealt into at most two parts of at least 20 each, for commands that open datasets one
 * at a time (see splitListArgvs): two side by side use both CPUs of the test guest, and stay far
 * within sshd's MaxSessions.
 */
export function inParts<T>(names: readonly T[]): T[][] {
  const parts = Math.min(2, Math.ceil(names.length / 20));
  return Array.from({ length: parts }, (_, part) => names.filter((_, i) => i % parts === part));
}

const MISSING = /^cannot open '([^']+)': (dataset does not exist|.*not exist.*)$/;

/** `cannot open 'x': dataset does not exist`: a name that is simply not there (zfs list, zfs holds). */
export function isMissingDataset(line: string): boolean {
  return MISSING.test(line);
}

/**
 * The state of `datasets` and their snapshots, from one `zfs list` with `recursive` (which also
 * lists every descendant) or from a few side by side without. Datasets that do not exist are
 * simply absent from the result; any other error is thrown. Without recursion, `withoutSnapshots`
 * are listed without their snapshots (parents of targets, the base path: only whether they exist
 * matters).
 */
export async function listDatasets(
  host: Host,
  datasets: readonly string[],
  options: { recursive?: boolean; withoutSnapshots?: readonly string[]; space?: boolean } = {},
): Promise<Map<string, DatasetState>> {
  const unique = [...new Set([...datasets, ...(options.withoutSnapshots ?? [])])];
  if (unique.length === 0) return new Map();
  const base = withoutEncryption.has(host) ? FIELDS.filter((f) => !ENCRYPTION_FIELDS.has(f)) : FIELDS;
  const fields = options.space ? [...base, ...SPACE_FIELDS] : base;
  const argvs = options.recursive
    ? [recursiveListArgv(unique, fields)]
    : splitListArgvs(unique, [...new Set(datasets)], fields);
  const outputs = await Promise.all(argvs.map((argv) => host.run(argv, { mutates: false, allowExitCodes: [1, 2] })));
  if (outputs.some((out) => out.exitCode !== 0 && UNKNOWN_ENCRYPTION.test(out.stderr))) {
    withoutEncryption.add(host);
    return listDatasets(host, datasets, options);
  }
  for (const out of outputs) {
    if (out.exitCode === 0) continue;
    const unexpected = out.stderr.split('\n').filter((line) => line.trim() && !MISSING.test(line.trim()));
    if (out.exitCode !== 1 || unexpected.length > 0) throw new CommandError(out);
  }
  return parseList(outputs.map((out) => out.stdout).join('\n'), unique, options.recursive, fields);
}

/** Parses lines of `fields` (by default the SmartOS side's: every field, space last). */
export function parseList(
  stdout: string,
  requested: readonly string[],
  recursive = false,
  fields: readonly string[] = [...FIELDS, ...SPACE_FIELDS],
): Map<string, DatasetState> {
  const named = new Set(requested);
  const wanted = { has: (name: string) => named.has(name) || (recursive && requested.some((r) => isWithin(name, r))) };
  const result = new Map<string, DatasetState>();
  const snapshots: Array<{ dataset: string; info: SnapshotInfo }> = [];
  const column = new Map(fields.map((f, i) => [f, i]));
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const values = line.split('\t');
    const field = (name: string) => (column.has(name) ? values[column.get(name)!] : undefined);
    const [name, type, guid] = values;
    if (!name || !type || !guid) continue;
    if (type === 'snapshot') {
      const at = name.indexOf('@');
      const dataset = name.slice(0, at);
      if (wanted.has(dataset)) {
        snapshots.push({
          dataset,
          info: {
            name: name.slice(at + 1),
            guid,
            createtxg: Number(field('createtxg')),
            creation: Number(field('creation')),
            userrefs: Number(field('userrefs')) || 0,
          },
        });
      }
    } else if (wanted.has(name) && (type === 'filesystem' || type === 'volume')) {
      const origin = field('origin');
      const token = field('receive_resume_token');
      const written = field('written') ?? '';
      const encryption = field('encryption');
      const root = field('encryptionroot');
      const space = SPACE_FIELDS.map(field);
      result.set(name, {
        name,
        type,
        guid,
        origin: origin && origin !== '-' ? origin : undefined,
        resumeToken: token && token !== '-' ? token : undefined,
        written: /^\d+$/.test(written) ? Number(written) : undefined,
        guarded: field('readonly') === 'on' && (type === 'volume' || field('canmount') === 'noauto'),
        ...(space.every((v) => v !== undefined) ? { space: spaceOf(space) } : {}),
        ...(encryption ? { encrypted: encryption !== 'off' && encryption !== '-' } : {}),
        ...(root && root !== '-' ? { encryptionRoot: root } : {}),
        snapshots: [],
      });
    }
  }
  for (const { dataset, info } of snapshots) result.get(dataset)?.snapshots.push(info);
  for (const state of result.values()) state.snapshots.sort((a, b) => a.createtxg - b.createtxg);
  return result;
}

function spaceOf(values: ReadonlyArray<string | undefined>): DatasetSpace {
  const bytes = (value: string | undefined) => (/^\d+$/.test(value ?? '') ? Number(value) : 0);
  const [refreservation, usedbydataset, available, refquota, volsize] = values.map(bytes) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { refreservation, usedbydataset, available, refquota, volsize };
}

/** Every dataset listed at or below `roots`, parents before children. */
export function datasetsWithin(listing: ReadonlyMap<string, DatasetState>, roots: readonly string[]): string[] {
  return [...listing.keys()]
    .filter((name) => roots.some((r) => isWithin(name, r)))
    .sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
}
