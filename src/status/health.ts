import type { DatasetState } from '../zfs/list.js';

/** The state of one dataset's backup pair, from the two listings alone (pure). */
export interface DatasetHealth {
  dataset: string;
  target: string;
  /** Snapshot counts per group (the part of the name before the first `-`). */
  localGroups: Record<string, number>;
  remoteGroups: Record<string, number>;
  newestCommon?: { name: string; guid: string; creation: number; ageSeconds: number };
  resumePending: boolean;
  /**
   * ok: the next run can send incrementally; missing: nothing on the backup host yet;
   * diverged: the backup host has snapshots after the common one; no-common: names but no guid in common;
   * broken (object storage): a stored incremental's parent is missing; corrupt: stored bytes fail their sha256.
   */
  chain: 'ok' | 'missing' | 'diverged' | 'no-common' | 'broken' | 'corrupt';
  /** Object storage: what is wrong, one line per stream. */
  problems?: string[];
}

export function groupOf(snapshot: string): string {
  const dash = snapshot.indexOf('-');
  return dash > 0 ? snapshot.slice(0, dash) : snapshot;
}

export function countGroups(snapshots: ReadonlyArray<{ name: string }>): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const s of snapshots) groups[groupOf(s.name)] = (groups[groupOf(s.name)] ?? 0) + 1;
  return groups;
}

export function datasetHealth(
  dataset: string,
  target: string,
  local: DatasetState | undefined,
  remote: DatasetState | undefined,
  now: number,
): DatasetHealth {
  const localSnaps = local?.snapshots ?? [];
  const remoteSnaps = remote?.snapshots ?? [];
  const remoteGuids = new Set(remoteSnaps.map((s) => s.guid));
  const common = [...localSnaps].reverse().find((s) => remoteGuids.has(s.guid));
  const newestRemote = remoteSnaps[remoteSnaps.length - 1];
  let chain: DatasetHealth['chain'];
  if (!remote || remoteSnaps.length === 0) chain = 'missing';
  else if (!common) chain = 'no-common';
  else chain = newestRemote?.guid === common.guid ? 'ok' : 'diverged';
  return {
    dataset,
    target,
    localGroups: countGroups(localSnaps),
    remoteGroups: countGroups(remoteSnaps),
    newestCommon: common
      ? {
          name: common.name,
          guid: common.guid,
          creation: common.creation,
          ageSeconds: Math.max(0, now - common.creation),
        }
      : undefined,
    resumePending: Boolean(remote?.resumeToken),
    chain,
  };
}

/** The age of a VM's backup: its worst dataset's newest common snapshot (Infinity when one has none). */
export function vmBackupAge(datasets: readonly DatasetHealth[]): number {
  if (datasets.length === 0) return Infinity;
  return Math.max(...datasets.map((d) => d.newestCommon?.ageSeconds ?? Infinity));
}

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/.exec(text.trim());
  if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 90m, 26h, 2d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(match[1]) * unit;
}

export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}
