/**
 * Thinning schedules (zfs-autobackup's grammar and algorithm, ported from its Thinner.py and
 * ThinnerRule.py) and smartcopy's counts, as one pure function: which of a group's snapshots to
 * destroy, and why each other one stays.
 */

/** Seconds per unit, as zfs-autobackup defines them (`m` is 30 days, `y` 365.25 days). */
const UNITS: Readonly<Record<string, number>> = {
  s: 1,
  min: 60,
  h: 3600,
  d: 86_400,
  w: 7 * 86_400,
  m: 30 * 86_400,
  y: 365.25 * 86_400,
};
const UNIT_NAMES: Readonly<Record<string, string>> = {
  s: 'second',
  min: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  m: 'month',
  y: 'year',
};

/** `1d1w`: one snapshot per `period` (epoch-aligned), for snapshots younger than `ttl`. */
export interface ScheduleRule {
  text: string;
  period: number;
  ttl: number;
}

export interface Schedule {
  text: string;
  /** A plain number in the schedule: the newest N stay whatever their age. */
  newest: number;
  rules: ScheduleRule[];
}

/** What one side keeps of a group: smartcopy's count, a schedule, or both (a snapshot either keeps stays). */
export interface Retention {
  count?: number;
  schedule?: Schedule;
}

export const SCHEDULE_EXAMPLE = '10,1d1w,1w1m,1m1y';

/** Parses `10,1d1w,1w1m,1m1y`; throws an error that says what is wrong and shows a valid schedule. */
export function parseSchedule(text: string): Schedule {
  const bad = (why: string) =>
    new Error(
      `retention schedule ${JSON.stringify(text)}: ${why}; write it like "${SCHEDULE_EXAMPLE}" (keep the 10 newest, one per day for a week, one per week for a month, one per month for a year; units s, min, h, d, w, m = 30 days, y)`,
    );
  const schedule: Schedule = { text, newest: 0, rules: [] };
  const parts = text.split(',').map((p) => p.trim().toLowerCase());
  if (parts.every((p) => p === '')) throw bad('it is empty');
  for (const part of parts) {
    if (/^\d+$/.test(part)) {
      schedule.newest = Math.max(schedule.newest, Number(part));
      continue;
    }
    const match = /^(\d+)([a-z]+)(\d+)([a-z]+)$/.exec(part);
    if (!match) throw bad(`"${part}" is neither a count nor <period><ttl> such as 1d1w`);
    const [, periodAmount, periodUnit, ttlAmount, ttlUnit] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    for (const unit of [periodUnit, ttlUnit])
      if (!(unit in UNITS)) throw bad(`"${part}" has the unknown unit "${unit}"`);
    const period = Number(periodAmount) * UNITS[periodUnit]!;
    const ttl = Number(ttlAmount) * UNITS[ttlUnit]!;
    if (period === 0) throw bad(`"${part}" has a period of 0`);
    if (period > ttl) throw bad(`"${part}" keeps one per ${periodAmount}${periodUnit} for less than that`);
    schedule.rules.push({ text: part, period, ttl });
  }
  return schedule;
}

/** `1d1w` → "one per day for 1 week". */
export function describeRule(rule: ScheduleRule): string {
  const [, pa, pu, ta, tu] = /^(\d+)([a-z]+)(\d+)([a-z]+)$/.exec(rule.text)!;
  // as numbers: `01d1w` reads "one per day", not "one per 01 days"
  const amount = (n: number, unit: string) => `${n} ${UNIT_NAMES[unit]}${n === 1 ? '' : 's'}`;
  return `one per ${Number(pa) === 1 ? UNIT_NAMES[pu!] : amount(Number(pa), pu!)} for ${amount(Number(ta), tu!)}`;
}

/** A snapshot of the group: its name and time (seconds since the epoch). */
export interface Member {
  name: string;
  time: number;
}

export interface Thinning {
  destroy: string[];
  /** Every other member, with the first reason it stays. */
  keep: Array<{ name: string; why: string }>;
}

/**
 * Which `members` (oldest first) to destroy. Nothing without a count or a schedule; never the
 * newest or a member of `protect` (name → why). Ages count back from `now`. A schedule's buckets are
 * epoch-aligned and each keeps its oldest member (zfs-autobackup's Thinner.thin).
 */
export function thin(
  members: readonly Member[],
  retention: Retention,
  protect: ReadonlyMap<string, string>,
  now: number,
): Thinning {
  const why = new Map<string, string>();
  const keepFor = (name: string, reason: string) => {
    if (!why.has(name)) why.set(name, reason);
  };
  for (const m of members) {
    const reason = protect.get(m.name);
    // an empty reason still protects: membership decides, not the text
    if (reason !== undefined) keepFor(m.name, reason);
  }
  // the newest is what the next run's incremental starts from, whatever a schedule says
  const newest = members.at(-1);
  if (newest) keepFor(newest.name, 'the newest');
  const { count, schedule } = retention;
  if (count === undefined && schedule === undefined) {
    for (const m of members) keepFor(m.name, 'no retention set: all kept');
  }
  if (count !== undefined) {
    for (const m of members.slice(Math.max(0, members.length - count))) keepFor(m.name, `one of the newest ${count}`);
  }
  if (schedule) {
    for (const m of members.slice(Math.max(0, members.length - schedule.newest)))
      keepFor(m.name, `one of the newest ${schedule.newest} (${schedule.text})`);
    const claimed = schedule.rules.map(() => new Set<number>());
    for (const m of members) {
      const age = now - m.time;
      schedule.rules.forEach((rule, i) => {
        if (age > rule.ttl) return;
        const block = Math.floor(m.time / rule.period);
        if (claimed[i]!.has(block)) return;
        claimed[i]!.add(block);
        keepFor(m.name, describeRule(rule));
      });
    }
  }
  const destroy = members.filter((m) => !why.has(m.name)).map((m) => m.name);
  const keep = members.filter((m) => why.has(m.name)).map((m) => ({ name: m.name, why: why.get(m.name)! }));
  return { destroy, keep };
}

/** `2026-11-30T21:48:16.123Z`, `2026-11-30T21:48Z`, `2026-11-30T21:48:16+01:00`, `2026-11-30` (UTC). */
const STAMP = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * A snapshot's time (seconds): the timestamp its name carries after `<group>-` (what zonecopy
 * writes, and what `--name` can set to write a history), else `creation`.
 */
export function snapshotTime(name: string, group: string, creation: number | undefined): number | undefined {
  const stamp = name.startsWith(`${group}-`) ? name.slice(group.length + 1) : undefined;
  if (stamp && STAMP.test(stamp)) {
    const ms = Date.parse(stamp.length === 10 ? `${stamp}T00:00:00Z` : stamp);
    // Date.parse takes February 30 as March 2: a day the month lacks is no timestamp
    const [y, m, d] = stamp.slice(0, 10).split('-').map(Number) as [number, number, number];
    const real = new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
    if (!Number.isNaN(ms) && real) return Math.floor(ms / 1000);
  }
  return creation;
}
