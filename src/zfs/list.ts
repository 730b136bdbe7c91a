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

const FIELDS = ['name', 'type', 'guid', 'createtxg', 'creation', 'origin', 'receive_resume_token', 'userrefs'];

/** `recursive` also lists every descendant (children created inside a zone, say). */
export function listArgv(datasets: readonly string[], recursive = false): string[] {
  return ['zfs', 'list', '-Hp', '-t', 'filesystem,volume,snapshot', ...(recursive ? ['-r'] : ['-d', '1']), '-o', FIELDS.join(','), ...datasets];
}

const MISSING = /^cannot open '([^']+)': (dataset does not exist|.*not exist.*)$/;

/**
 * One `zfs list` call for all `datasets` (and their snapshots). Datasets that do not exist are
 * simply absent from the result; any other error is thrown.
 */
export async function listDatasets(host: Host, datasets: readonly string[], options: { recursive?: boolean } = {}): Promise<Map<string, DatasetState>> {
  const result = new Map<string, DatasetState>();
  const unique = [...new Set(datasets)];
  if (unique.length === 0) return result;
  const out = await host.run(listArgv(unique, options.recursive), { mutates: false, allowExitCodes: [1] });
  if (out.exitCode !== 0) {
    const unexpected = out.stderr.split('\n').filter((line) => line.trim() && !MISSING.test(line.trim()));
    if (unexpected.length > 0) throw new CommandError(out);
  }
  return parseList(out.stdout, unique, options.recursive);
}

export function parseList(stdout: string, requested: readonly string[], recursive = false): Map<string, DatasetState> {
  const named = new Set(requested);
  const wanted = { has: (name: string) => named.has(name) || (recursive && requested.some((r) => isWithin(name, r))) };
  const result = new Map<string, DatasetState>();
  const snapshots: Array<{ dataset: string; info: SnapshotInfo }> = [];
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const [name, type, guid, createtxg, creation, origin, token, userrefs] = line.split('\t');
    if (!name || !type || !guid) continue;
    if (type === 'snapshot') {
      const at = name.indexOf('@');
      const dataset = name.slice(0, at);
      if (wanted.has(dataset)) {
        snapshots.push({ dataset, info: { name: name.slice(at + 1), guid, createtxg: Number(createtxg), creation: Number(creation), userrefs: Number(userrefs) || 0 } });
      }
    } else if (wanted.has(name) && (type === 'filesystem' || type === 'volume')) {
      result.set(name, {
        name,
        type,
        guid,
        origin: origin && origin !== '-' ? origin : undefined,
        resumeToken: token && token !== '-' ? token : undefined,
        snapshots: [],
      });
    }
  }
  for (const { dataset, info } of snapshots) result.get(dataset)?.snapshots.push(info);
  for (const state of result.values()) state.snapshots.sort((a, b) => a.createtxg - b.createtxg);
  return result;
}

/** Every dataset listed at or below `roots`, parents before children. */
export function datasetsWithin(listing: ReadonlyMap<string, DatasetState>, roots: readonly string[]): string[] {
  return [...listing.keys()].filter((name) => roots.some((r) => isWithin(name, r))).sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
}
