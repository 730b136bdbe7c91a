import type { Policy } from '../config/policies-schema.js';
import { nextCronFire, parseCron, parseEvery } from './cron.js';

/**
 * When each policy fires (pure: times in, times out). `every` keeps to its grid from the service's
 * start, so a slow cycle never shifts the next ones; `schedule` fires as cron would.
 */
export type Timing = { kind: 'every'; seconds: number; text: string } | { kind: 'cron'; text: string };

export function timingOf(policy: Pick<Policy, 'every' | 'schedule'>): Timing {
  if (policy.every !== undefined) return { kind: 'every', seconds: parseEvery(policy.every), text: policy.every };
  return { kind: 'cron', text: policy.schedule! };
}

/** `every 15s` or `schedule 0 3 * * *`, for the state file and the log. */
export function describeTiming(timing: Timing): string {
  return timing.kind === 'every' ? `every ${timing.text}` : `schedule ${timing.text}`;
}

/** The first fire: an `every` policy at once, a cron policy at its next minute. */
export function firstFire(timing: Timing, now: number): number | undefined {
  return timing.kind === 'every' ? now : nextCronFire(parseCron(timing.text), now);
}

/**
 * The fire after `planned` (the one that has just fired) that is still ahead of `now`, and how many
 * fires in between were missed (the loop was held up): those count as skipped, never run late.
 */
export function nextFire(timing: Timing, planned: number, now: number): { at: number | undefined; missed: number } {
  if (timing.kind === 'every') {
    const step = timing.seconds * 1000;
    const behind = Math.max(0, Math.floor((now - planned) / step));
    return { at: planned + (behind + 1) * step, missed: behind };
  }
  const schedule = parseCron(timing.text);
  let at = nextCronFire(schedule, planned);
  let missed = 0;
  while (at !== undefined && at <= now - 60_000) {
    missed += 1;
    at = nextCronFire(schedule, at);
  }
  return { at, missed };
}

/** The policies whose next fire has come, by name. */
export function duePolicies(nextAt: ReadonlyMap<string, number | undefined>, now: number): string[] {
  return [...nextAt].filter(([, at]) => at !== undefined && at <= now).map(([name]) => name);
}

/** Which of a cycle's VMs go now and which are skipped because their previous cycle still runs (pure). */
export function splitBusy(uuids: readonly string[], running: ReadonlySet<string>): { go: string[]; busy: string[] } {
  return { go: uuids.filter((u) => !running.has(u)), busy: uuids.filter((u) => running.has(u)) };
}

/** The VMs a policy matched last cycle that its selector no longer finds (deleted, or no longer matching). */
export function disappeared(before: readonly string[], now: readonly string[]): string[] {
  const current = new Set(now);
  return before.filter((u) => !current.has(u));
}
