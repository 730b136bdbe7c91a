/** serve's timing, pure: the cron grammar, next-fire times, `every` intervals and which VMs a late cycle skips. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CronError, nextCronFire, parseCron, parseEvery } from '../../src/service/cron.js';
import { disappeared, duePolicies, firstFire, nextFire, splitBusy, timingOf } from '../../src/service/scheduler.js';

/** Local time, as cron reads its fields. */
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => new Date(y, mo - 1, d, h, mi, s).getTime();
const show = (ms: number | undefined) => {
  if (ms === undefined) return 'never';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

describe('cron grammar', () => {
  it('reads numbers, *, ranges, lists and steps, 7 as Sunday', () => {
    const c = parseCron('*/15 1-3,22 * 1,6-7 7');
    assert.deepEqual([...c.minutes], [0, 15, 30, 45]);
    assert.deepEqual([...c.hours], [1, 2, 3, 22]);
    assert.deepEqual([...c.months], [1, 6, 7]);
    assert.deepEqual([...c.weekdays], [0]);
    assert.deepEqual([...parseCron('10-50/20 * * * *').minutes], [10, 30, 50]);
    assert.deepEqual([...parseCron('5/20 * * * *').minutes], [5, 25, 45]);
  });

  const refused: Array<[string, RegExp]> = [
    ['* * * *', /expected five fields/],
    ['60 * * * *', /minute field "60": 60 is out of range/],
    ['* 24 * * *', /hour field "24"/],
    ['* * 0 * *', /day of month field "0"/],
    ['* * * 13 *', /month field "13"/],
    ['* * * * 8', /day of week field "8"/],
    ['5-1 * * * *', /runs backwards/],
    ['*/0 * * * *', /a step must be at least 1/],
    ['@daily', /expected five fields/],
    ['* * * jan *', /"jan" is not a number, range, list or step/],
    ['1,,2 * * * *', /"" is not a number/],
  ];
  for (const [text, why] of refused)
    it(`refuses ${JSON.stringify(text)}`, () =>
      assert.throws(
        () => parseCron(text),
        (e: Error) => e instanceof CronError && why.test(e.message),
      ));

  const cases: Array<[string, number, string]> = [
    ['* * * * *', at(2026, 3, 10, 12, 30, 15), '2026-03-10 12:31:00'],
    ['* * * * *', at(2026, 3, 10, 12, 30, 0), '2026-03-10 12:31:00'],
    ['0 3 * * *', at(2026, 3, 10, 12, 30), '2026-03-11 03:00:00'],
    ['0 3 * * *', at(2026, 3, 10, 2, 59, 59), '2026-03-10 03:00:00'],
    ['*/15 * * * *', at(2026, 3, 10, 12, 46), '2026-03-10 13:00:00'],
    ['0 0 1 * *', at(2026, 12, 31, 23, 59), '2027-01-01 00:00:00'],
    ['30 4 29 2 *', at(2026, 3, 1), '2028-02-29 04:30:00'],
    // both day fields restricted: either matches (the 13th, or a Friday), as cron does
    ['0 12 13 * 5', at(2026, 3, 1), '2026-03-06 12:00:00'],
    // only day-of-week restricted: Mondays only
    ['0 9 * * 1', at(2026, 3, 10, 10), '2026-03-16 09:00:00'],
    ['0 0 31 2 *', at(2026, 1, 1), 'never'],
  ];
  for (const [text, after, expected] of cases)
    it(`${text} after ${show(after)} fires at ${expected}`, () =>
      assert.equal(show(nextCronFire(parseCron(text), after)), expected));
});

describe('every', () => {
  it('reads s, m, h and d; refuses the rest', () => {
    assert.equal(parseEvery('15s'), 15);
    assert.equal(parseEvery('5m'), 300);
    assert.equal(parseEvery('1h'), 3600);
    assert.equal(parseEvery('2d'), 172_800);
    for (const bad of ['15', '0s', '1.5m', 'fast', '-5s']) assert.throws(() => parseEvery(bad), CronError, bad);
  });

  it('keeps to its grid from the first fire: a slow cycle does not shift the next ones', () => {
    const timing = timingOf({ every: '15s' });
    const start = at(2026, 3, 10, 12, 0, 0);
    assert.equal(firstFire(timing, start), start);
    assert.deepEqual(nextFire(timing, start, start + 400), { at: start + 15_000, missed: 0 });
  });

  it('fires missed while the loop was held up are counted, never run late in a heap', () => {
    const timing = timingOf({ every: '15s' });
    const start = at(2026, 3, 10, 12, 0, 0);
    assert.deepEqual(nextFire(timing, start, start + 47_000), { at: start + 60_000, missed: 3 });
  });
});

describe('cron policies', () => {
  it('fire first at their next minute, then at the one after', () => {
    const timing = timingOf({ schedule: '* * * * *' });
    const now = at(2026, 3, 10, 12, 0, 20);
    const first = firstFire(timing, now)!;
    assert.equal(show(first), '2026-03-10 12:01:00');
    assert.deepEqual(nextFire(timing, first, first + 2000), { at: first + 60_000, missed: 0 });
  });

  it('a fire more than a minute past is skipped and counted', () => {
    const timing = timingOf({ schedule: '* * * * *' });
    const planned = at(2026, 3, 10, 12, 0);
    const { at: next, missed } = nextFire(timing, planned, planned + 185_000);
    assert.equal(show(next), '2026-03-10 12:03:00');
    assert.equal(missed, 2);
  });
});

describe('due policies, busy VMs, VMs gone', () => {
  it('picks the policies whose time has come', () => {
    const next = new Map<string, number | undefined>([
      ['a', 1000],
      ['b', 2000],
      ['c', undefined],
    ]);
    assert.deepEqual(duePolicies(next, 1500), ['a']);
    assert.deepEqual(duePolicies(next, 2000), ['a', 'b']);
  });

  it('a VM whose previous cycle still runs is skipped, the others go', () => {
    assert.deepEqual(splitBusy(['u1', 'u2', 'u3'], new Set(['u2'])), { go: ['u1', 'u3'], busy: ['u2'] });
  });

  it('a VM matched before and not now is gone', () => {
    assert.deepEqual(disappeared(['u1', 'u2', 'u3'], ['u3', 'u4']), ['u1', 'u2']);
    assert.deepEqual(disappeared([], ['u1']), []);
  });
});
