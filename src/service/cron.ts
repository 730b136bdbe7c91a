/**
 * Cron's five-field grammar (crontab(5)): minute hour day-of-month month day-of-week, each a `*`, a
 * number, a range `a-b`, a list `a,b`, or a step `*\/n` / `a-b/n`; day-of-week 0–7 (0 and 7 are
 * Sunday). As in cron, when both day fields are restricted a day matching either fires. Times are
 * the host's local time, as cron's are. Pure: parsing and next-fire computation only.
 */
export interface CronSchedule {
  text: string;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
  /** The day-of-month / day-of-week field was `*` (cron's OR rule applies only when neither is). */
  anyDay: boolean;
  anyWeekday: boolean;
}

export class CronError extends Error {
  override name = 'CronError';
}

const FIELDS = [
  { name: 'minute', low: 0, high: 59 },
  { name: 'hour', low: 0, high: 23 },
  { name: 'day of month', low: 1, high: 31 },
  { name: 'month', low: 1, high: 12 },
  { name: 'day of week', low: 0, high: 7 },
] as const;

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  const bad = (why: string) =>
    new CronError(`${field.name} field ${JSON.stringify(text)}: ${why} (${field.low}-${field.high}, *, a-b, a,b, */n)`);
  for (const part of text.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw bad(`${JSON.stringify(part)} is not a number, range, list or step`);
    const [, star, a, b, s] = match;
    let low: number = field.low;
    let high: number = field.high;
    if (star !== '*') {
      low = Number(a);
      high = b === undefined ? (s === undefined ? low : field.high) : Number(b);
    }
    const step = s === undefined ? 1 : Number(s);
    if (low < field.low || high > field.high || low > field.high) throw bad(`${part} is out of range`);
    if (low > high) throw bad(`${part}: the range runs backwards`);
    if (step < 1) throw bad(`${part}: a step must be at least 1`);
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

export function parseCron(text: string): CronSchedule {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5)
    throw new CronError(
      `${JSON.stringify(text)}: expected five fields "minute hour day-of-month month day-of-week", e.g. "0 3 * * *" (03:00 every day) or "*/15 * * * *"`,
    );
  const [minutes, hours, days, months, weekdays] = fields.map((f, i) => parseField(f, FIELDS[i]!));
  // 7 is Sunday as 0 is
  if (weekdays!.delete(7)) weekdays!.add(0);
  return {
    text: fields.join(' '),
    minutes: minutes!,
    hours: hours!,
    days: days!,
    months: months!,
    weekdays: weekdays!,
    anyDay: fields[2] === '*',
    anyWeekday: fields[4] === '*',
  };
}

function dayMatches(schedule: CronSchedule, date: Date): boolean {
  const day = schedule.days.has(date.getDate());
  const weekday = schedule.weekdays.has(date.getDay());
  if (schedule.anyDay && schedule.anyWeekday) return true;
  if (schedule.anyDay) return weekday;
  if (schedule.anyWeekday) return day;
  return day || weekday;
}

/** The first minute strictly after `after` (ms) the schedule fires at, in ms; undefined if none within 5 years (e.g. 31 February). */
export function nextCronFire(schedule: CronSchedule, after: number): number | undefined {
  const date = new Date(after);
  date.setSeconds(0, 0);
  date.setMinutes(date.getMinutes() + 1);
  const limit = after + 5 * 366 * 86_400_000;
  while (date.getTime() <= limit) {
    if (!schedule.months.has(date.getMonth() + 1)) {
      date.setMonth(date.getMonth() + 1, 1);
      date.setHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(schedule, date)) {
      date.setDate(date.getDate() + 1);
      date.setHours(0, 0, 0, 0);
      continue;
    }
    if (!schedule.hours.has(date.getHours())) {
      date.setHours(date.getHours() + 1, 0, 0, 0);
      continue;
    }
    if (!schedule.minutes.has(date.getMinutes())) {
      date.setMinutes(date.getMinutes() + 1, 0, 0);
      continue;
    }
    return date.getTime();
  }
  return undefined;
}

/** `15s`, `5m`, `1h`, `1d`: an interval in seconds for `every`. */
export function parseEvery(text: string): number {
  const match = /^\s*(\d+)\s*(s|m|h|d)\s*$/.exec(text);
  if (!match) throw new CronError(`${JSON.stringify(text)}: expected an interval such as 15s, 5m, 1h or 1d`);
  const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds < 1) throw new CronError(`${JSON.stringify(text)}: at least 1s`);
  return seconds;
}
