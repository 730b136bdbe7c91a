import type { ConsistencyRecord } from '../backup/hook-run.js';

/** One backup set `restore --list` shows: what `--snapshot` would restore, and how consistent it is. */
export interface ListedSet {
  snapshot: string;
  consistency: string;
  record?: ConsistencyRecord;
}

export function renderSetList(uuid: string, sets: readonly ListedSet[]): string {
  if (sets.length === 0) return `VM ${uuid}: no complete backup set`;
  return [
    `VM ${uuid}: ${sets.length} complete backup set(s), newest first (restore one with --snapshot NAME)`,
    ...sets.map((s) => `  ${s.snapshot}  ${s.consistency}`),
  ].join('\n');
}
