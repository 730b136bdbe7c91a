import type { DatasetState } from '../zfs/list.js';
import { snapshotTime, thin, type Retention, type Thinning } from './retention.js';

/** Which of a group's snapshots each side keeps (retention.ts decides), as pure functions. */

/** `daily-…` is in group `daily`; `daily2-…` is not. */
export function inGroup(snapshot: string, group: string): boolean {
  return snapshot.length > group.length + 1 && snapshot.startsWith(`${group}-`);
}

/** A count, a schedule, both, or undefined when neither is set (then nothing is thinned). */
export function retentionOf(count: number | undefined, schedule: Retention['schedule']): Retention | undefined {
  if (count === undefined && schedule === undefined) return undefined;
  return { ...(count !== undefined ? { count } : {}), ...(schedule ? { schedule } : {}) };
}

/** What one side's thinning of one dataset decided: full names are `<on>@<name>`. */
export interface DatasetThinning extends Thinning {
  on: string;
}

/**
 * One side's thinning of one dataset's group: `snapshots` oldest first (every group; only the
 * group's are members), each timed by its name or `creation`. A member whose time is unknown
 * stays. Undefined when the side has no retention or no member.
 */
export function thinGroup(input: {
  on: string;
  snapshots: ReadonlyArray<{ name: string; creation?: number }>;
  group: string;
  retention: Retention | undefined;
  protect: ReadonlyMap<string, string>;
  now: number;
}): DatasetThinning | undefined {
  if (!input.retention) return undefined;
  const protect = new Map(input.protect);
  const members = input.snapshots
    .filter((s) => inGroup(s.name, input.group))
    .map((s) => {
      const time = snapshotTime(s.name, input.group, s.creation);
      if (time === undefined && !protect.has(s.name))
        protect.set(s.name, 'its time is unknown (no timestamp in its name)');
      return { name: s.name, time: time ?? input.now };
    });
  if (members.length === 0) return undefined;
  return { on: input.on, ...thin(members, input.retention, protect, input.now) };
}

/** Holds this run takes off, by snapshot: one per target that releases it. */
export type Releasing = ReadonlySet<string> | ReadonlyMap<string, number>;

/**
 * Snapshots of `state` (named `on`) held by anyone but zonecopy's holds being released this run:
 * `zfs destroy` refuses them, so rotation never chooses them (another tool's hold means keep).
 */
export function heldByOthers(state: DatasetState | undefined, on: string, releasing: Releasing = new Set()): string[] {
  const released = (full: string) =>
    releasing instanceof Map ? (releasing.get(full) ?? 0) : (releasing as ReadonlySet<string>).has(full) ? 1 : 0;
  return (state?.snapshots ?? []).filter((s) => s.userrefs - released(`${on}@${s.name}`) > 0).map((s) => s.name);
}

/** `name → why` for the snapshots `heldByOthers` names. */
export function heldProtection(
  state: DatasetState | undefined,
  on: string,
  releasing?: Releasing,
): Map<string, string> {
  return new Map(
    heldByOthers(state, on, releasing).map((name) => [
      name,
      "held (zfs holds): a target's newest common snapshot, or another tool's",
    ]),
  );
}

/** Ages count back from the run's snapshot: its name's time (what `--name` sets), else the run's start. */
export function thinningNow(snapshot: string, group: string, startedAt: Date): number {
  return snapshotTime(snapshot, group, Math.floor(startedAt.getTime() / 1000))!;
}
