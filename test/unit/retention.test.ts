import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  describeRule,
  parseSchedule,
  snapshotTime,
  thin,
  type Member,
  type Retention,
  type Schedule,
} from '../../src/plan/retention.js';

const DAY = 86_400;
const YEAR = 365.25 * DAY;
/** zfs-autobackup's units, the grammar the generated schedules are written in. */
const UNIT_SECONDS: Record<string, number> = { s: 1, min: 60, h: 3600, d: DAY, w: 7 * DAY, m: 30 * DAY, y: YEAR };
const at = (iso: string) => Date.parse(iso) / 1000;
/** zfs-autobackup's default, and the example every parse error shows. */
const SCHEDULE = '10,1d1w,1w1m,1m1y';

/** Enough runs to reach the edges (ties, ttl boundaries) while the file stays at a few seconds. */
const RUNS = { numRuns: 1000 };

// ---- generators ----

/** `<period><ttl>` with period <= ttl, in any of the units. */
const ruleText = fc
  .tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom(...Object.keys(UNIT_SECONDS)))
  .chain(([a, u]) =>
    fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom(...Object.keys(UNIT_SECONDS)))
      .map(([b, v]) => (a * UNIT_SECONDS[u]! <= b * UNIT_SECONDS[v]! ? `${a}${u}${b}${v}` : `${b}${v}${a}${u}`)),
  );

/** A schedule string: rules and an optional plain count, in any order. */
const scheduleText = fc
  .tuple(fc.array(ruleText, { maxLength: 4 }), fc.option(fc.nat(12), { nil: undefined }))
  .filter(([rules, newest]) => rules.length > 0 || newest !== undefined)
  .chain(([rules, newest]) =>
    fc.shuffledSubarray([...rules, ...(newest === undefined ? [] : [`${newest}`])], {
      minLength: rules.length + (newest === undefined ? 0 : 1),
    }),
  )
  .map((parts) => parts.join(','));

/**
 * Member times, oldest first: runs spaced by a random fraction of a scale (a minute to a week, so
 * several land in one bucket and some share a second), some moved onto an epoch-aligned bucket edge
 * or the second before it.
 */
const times = fc
  .record({
    start: fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2026-06-01T00:00:00Z') }),
    scale: fc.constantFrom(60, 3600, DAY, 7 * DAY),
    steps: fc.array(
      fc.record({
        gap: fc.integer({ min: 0, max: 200 }),
        edge: fc.constantFrom(0, 0, 0, DAY, 7 * DAY, 30 * DAY),
        before: fc.boolean(),
      }),
      { maxLength: 40 },
    ),
  })
  .map(({ start, scale, steps }) => {
    let t = start;
    const out = steps.map(({ gap, edge, before }) => {
      t += Math.floor((scale * gap) / 100);
      return edge === 0 ? t : Math.floor(t / edge) * edge - (before ? 1 : 0);
    });
    return out.sort((a, b) => a - b);
  });

/** Names that sort like their times (as zonecopy's timestamps do), unique even for equal times. */
const members = times.map((ts) =>
  ts.map((time, i): Member => ({
    name: `daily-${new Date(time * 1000).toISOString()}~${String(i).padStart(3, '0')}`,
    time,
  })),
);

interface Case {
  members: Member[];
  retention: Retention;
  protect: Map<string, string>;
  now: number;
}

/** A timeline, a count and/or schedule (or neither), some members protected, `now` at or after the newest. */
const cases: fc.Arbitrary<Case> = fc
  .tuple(members, fc.option(fc.nat(10), { nil: undefined }), fc.option(scheduleText, { nil: undefined }))
  .chain(([ms, count, text]) => {
    const schedule = text === undefined ? undefined : parseSchedule(text);
    const newest = ms.at(-1)?.time ?? at('2026-01-01T00:00:00Z');
    // a member exactly ttl old is still inside its rule: aim `now` there too
    const ttlEdges = ms.flatMap((m) => schedule?.rules.map((r) => m.time + r.ttl) ?? []).filter((t) => t >= newest);
    const now = fc.oneof(
      fc.constant(newest),
      fc.integer({ min: newest, max: newest + 3 * DAY }),
      fc.integer({ min: newest, max: newest + 3 * YEAR }),
      ...(ttlEdges.length > 0 ? [fc.constantFrom(...ttlEdges)] : []),
    );
    const reasons = fc.array(
      fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
      ),
      { minLength: ms.length, maxLength: ms.length },
    );
    return fc.record({ now, reasons }).map(({ now, reasons }) => ({
      members: ms,
      retention: { ...(count === undefined ? {} : { count }), ...(schedule ? { schedule } : {}) },
      protect: new Map(ms.flatMap((m, i) => (reasons[i] === undefined ? [] : [[m.name, reasons[i]] as const]))),
      now,
    }));
  });

/** Per rule, the oldest member of each bucket among those no older than the rule's ttl. */
function bucketKeepers(ms: readonly Member[], schedule: Schedule | undefined, now: number): Set<string> {
  const keepers = new Set<string>();
  for (const rule of schedule?.rules ?? []) {
    const seen = new Set<number>();
    for (const m of ms) {
      if (now - m.time > rule.ttl) continue;
      const block = Math.floor(m.time / rule.period);
      if (!seen.has(block)) keepers.add(m.name);
      seen.add(block);
    }
  }
  return keepers;
}

const newestNames = (ms: readonly Member[], n: number) => ms.slice(Math.max(0, ms.length - n)).map((m) => m.name);

describe('thin: properties over random timelines and schedules', () => {
  it('never destroys the newest member', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const newest = c.members.at(-1);
        if (newest) assert.ok(!thin(c.members, c.retention, c.protect, c.now).destroy.includes(newest.name));
      }),
      RUNS,
    );
  });

  it('never destroys a protected member, and keeps it for the reason it is protected', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { destroy, keep } = thin(c.members, c.retention, c.protect, c.now);
        const why = new Map(keep.map((k) => [k.name, k.why]));
        for (const [name, reason] of c.protect) {
          assert.ok(!destroy.includes(name), `${name} is protected (${JSON.stringify(reason)}) but destroyed`);
          assert.equal(why.get(name), reason);
        }
      }),
      RUNS,
    );
  });

  it('keeps, for every rule, the oldest member of each epoch-aligned bucket younger than the ttl', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { destroy } = thin(c.members, c.retention, c.protect, c.now);
        for (const name of bucketKeepers(c.members, c.retention.schedule, c.now))
          assert.ok(!destroy.includes(name), `${name} is the oldest of its bucket but destroyed`);
      }),
      RUNS,
    );
  });

  it('keeps the newest N of a count and of a schedule that starts with a plain number', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { destroy } = thin(c.members, c.retention, c.protect, c.now);
        const newest = [
          ...newestNames(c.members, c.retention.count ?? 0),
          ...newestNames(c.members, c.retention.schedule?.newest ?? 0),
        ];
        for (const name of newest) assert.ok(!destroy.includes(name), `${name} is among the newest but destroyed`);
      }),
      RUNS,
    );
  });

  it('destroys every member that nothing keeps (a count or schedule is not a keep-all)', () => {
    fc.assert(
      fc.property(cases, (c) => {
        fc.pre(c.retention.count !== undefined || c.retention.schedule !== undefined);
        const { destroy } = thin(c.members, c.retention, c.protect, c.now);
        const kept = new Set([
          ...c.protect.keys(),
          ...newestNames(c.members, 1),
          ...newestNames(c.members, c.retention.count ?? 0),
          ...newestNames(c.members, c.retention.schedule?.newest ?? 0),
          ...bucketKeepers(c.members, c.retention.schedule, c.now),
        ]);
        assert.deepEqual(
          destroy,
          c.members.filter((m) => !kept.has(m.name)).map((m) => m.name),
        );
      }),
      RUNS,
    );
  });

  it('is idempotent: thinning what it kept, with the same inputs, destroys nothing', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const first = thin(c.members, c.retention, c.protect, c.now);
        const kept = new Set(first.keep.map((k) => k.name));
        const again = thin(
          c.members.filter((m) => kept.has(m.name)),
          c.retention,
          c.protect,
          c.now,
        );
        assert.deepEqual(again.destroy, []);
        assert.deepEqual(again.keep, first.keep);
      }),
      RUNS,
    );
  });

  it('destroy and keep partition the members, each in the members’ order', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { destroy, keep } = thin(c.members, c.retention, c.protect, c.now);
        const gone = new Set(destroy);
        const names = c.members.map((m) => m.name);
        assert.deepEqual(
          destroy,
          names.filter((n) => gone.has(n)),
        );
        assert.deepEqual(
          keep.map((k) => k.name),
          names.filter((n) => !gone.has(n)),
        );
        for (const k of keep) assert.equal(typeof k.why, 'string');
      }),
      RUNS,
    );
  });

  it('with neither a count nor a schedule, destroys nothing', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { destroy, keep } = thin(c.members, {}, c.protect, c.now);
        assert.deepEqual(destroy, []);
        assert.equal(keep.length, c.members.length);
      }),
      RUNS,
    );
  });
});

// ---- hand-written timelines: the expected lists are worked out by hand from the grammar ----

/** One snapshot a day (or every `hours`) named as zonecopy names them; `MM-DD` or `MM-DDTHH` labels them back. */
function timeline(first: string, count: number, hours = 24): Member[] {
  return Array.from({ length: count }, (_, i) => {
    const time = at(first) + i * hours * 3600;
    return { name: `daily-${new Date(time * 1000).toISOString()}`, time };
  });
}
const label = (name: string, withHour = false) => name.slice(11, withHour ? 19 : 16);

describe('thin: hand-written timelines (zfs-autobackup’s rules)', () => {
  it('60 daily snapshots with 10,1d1w,1w1m,1m1y: the newest 10, one per Thursday-week for 30 days, one per 30-day slice', () => {
    // Sep 1 to Oct 30 2026 at 01:00 UTC; 2026-10-01 is a Thursday (epoch weeks start on Thursdays);
    // 30-day slices since the epoch start on Sep 4 and Oct 4 2026 (day 20700 and 20730).
    const ms = timeline('2026-09-01T01:00:00Z', 60);
    const { keep, destroy } = thin(
      ms,
      { schedule: parseSchedule('10,1d1w,1w1m,1m1y') },
      new Map(),
      at('2026-10-30T12:00:00Z'),
    );
    const month = 'one per month for 1 year';
    const week = 'one per week for 1 month';
    const newest10 = 'one of the newest 10 (10,1d1w,1w1m,1m1y)';
    const expected: Array<[string, string]> = [
      ['09-01', month], // the oldest of the slice that started on Aug 5
      ['09-04', month],
      ['10-01', week], // Sep 30 01:00 is 30 days 11 hours old: outside 1w1m
      ['10-04', month],
      ['10-08', week],
      ['10-15', week],
      ...['21', '22', '23', '24', '25', '26', '27', '28', '29'].map((d): [string, string] => [`10-${d}`, newest10]),
      ['10-30', 'the newest'],
    ];
    assert.deepEqual(
      keep.map((k) => [label(k.name), k.why]),
      expected,
    );
    const kept = new Set(expected.map(([l]) => l));
    assert.deepEqual(
      destroy.map((n) => label(n)),
      ms.map((m) => label(m.name)).filter((l) => !kept.has(l)),
    );
    assert.equal(destroy.length, 44);
  });

  it('a count and a schedule together keep what either keeps, and only that', () => {
    // every 6 hours (03, 09, 15, 21 UTC) from Nov 20 to Nov 29 2026; now is Nov 29 22:00
    const ms = timeline('2026-11-20T03:00:00Z', 40, 6);
    const now = at('2026-11-29T22:00:00Z');
    const kept = (retention: Retention) => thin(ms, retention, new Map(), now).keep.map((k) => label(k.name, true));
    const newest5 = ['11-28T21', '11-29T03', '11-29T09', '11-29T15', '11-29T21'];
    // 1d1w reaches back to Nov 22 22:00, so Nov 22 21:00 is out and each day from Nov 23 keeps its 03:00
    const daily = ['11-23T03', '11-24T03', '11-25T03', '11-26T03', '11-27T03', '11-28T03', '11-29T03'];
    assert.deepEqual(kept({ count: 5 }), newest5);
    assert.deepEqual(kept({ schedule: parseSchedule('1d1w') }), [...daily, '11-29T21']);
    assert.deepEqual(kept({ count: 5, schedule: parseSchedule('1d1w') }), [
      ...daily.slice(0, 6),
      '11-28T21',
      '11-29T03',
      '11-29T09',
      '11-29T15',
      '11-29T21',
    ]);
    const both = thin(ms, { count: 5, schedule: parseSchedule('1d1w') }, new Map(), now);
    assert.equal(both.keep.find((k) => label(k.name, true) === '11-29T03')?.why, 'one of the newest 5');
    assert.equal(both.keep.find((k) => label(k.name, true) === '11-27T03')?.why, 'one per day for 1 week');
    assert.equal(both.destroy.length, 29);
  });

  it('a protected old snapshot stays; a member exactly ttl old is still in its week, one second later it is not', () => {
    // daily at 00:00 UTC (on the bucket edges) from Nov 1 to Nov 30 2026; weeks start Thursday Nov 12, 19, 26
    const ms = timeline('2026-11-01T00:00:00Z', 30);
    const offsite = 'newest common snapshot of target "offsite"';
    const protect = new Map([[ms[1]!.name, offsite]]);
    const schedule = parseSchedule('3,1w2w');
    const now = at('2026-11-30T00:00:00Z');
    const weekly = 'one per week for 2 weeks';
    const newest3 = 'one of the newest 3 (3,1w2w)';
    assert.deepEqual(
      thin(ms, { schedule }, protect, now).keep.map((k) => [label(k.name), k.why]),
      [
        ['11-02', offsite],
        ['11-16', weekly], // exactly 14 days old: age <= ttl
        ['11-19', weekly],
        ['11-26', weekly],
        ['11-28', newest3],
        ['11-29', newest3],
        ['11-30', 'the newest'],
      ],
    );
    assert.deepEqual(
      thin(ms, { schedule }, protect, now + 1).keep.map((k) => label(k.name)),
      ['11-02', '11-17', '11-19', '11-26', '11-28', '11-29', '11-30'],
    );
    // without the protection Nov 2 goes like its neighbours
    assert.ok(thin(ms, { schedule }, new Map(), now).destroy.includes(ms[1]!.name));
  });

  it('keeps everything without a count or schedule, and nothing of an empty group', () => {
    const ms = timeline('2026-11-01T00:00:00Z', 5);
    assert.deepEqual(thin(ms, {}, new Map(), at('2027-11-01T00:00:00Z')).destroy, []);
    assert.deepEqual(thin([], { count: 1, schedule: parseSchedule(SCHEDULE) }, new Map(), 0), {
      destroy: [],
      keep: [],
    });
    assert.deepEqual(
      thin(ms, { count: 0 }, new Map(), at('2026-11-05T00:00:00Z')).keep.map((k) => k.why),
      ['the newest'],
    );
  });
});

describe('snapshotTime: the timestamp in the name, else creation', () => {
  const creation = 1_700_000_000;
  const cases: Array<[string, string, number | undefined]> = [
    ['ISO with Z', 'daily-2026-11-30T21:48:16Z', at('2026-11-30T21:48:16Z')],
    [
      'milliseconds, as zonecopy writes it (whole seconds)',
      'daily-2026-11-30T21:48:16.789Z',
      at('2026-11-30T21:48:16Z'),
    ],
    ['an offset', 'daily-2026-11-30T22:48:16+01:00', at('2026-11-30T21:48:16Z')],
    ['minutes only', 'daily-2026-11-30T21:48Z', at('2026-11-30T21:48:00Z')],
    ['a date only is midnight UTC', 'daily-2026-11-30', at('2026-11-30T00:00:00Z')],
    ['a name without a timestamp', 'daily-before-upgrade', creation],
    ['a timestamp with words after it', 'daily-2026-11-30T21:48:16Z-manual', creation],
    ['another group’s name', 'weekly-2026-11-30T21:48:16Z', creation],
    ['a group that only starts the same', 'dailyx-2026-11-30T21:48:16Z', creation],
    ['a month that does not exist', 'daily-2026-13-01', creation],
    ['a day the month lacks (Date.parse reads March 2)', 'daily-2026-02-30T10:00:00Z', creation],
    ['February 29 of a leap year', 'daily-2028-02-29', at('2028-02-29T00:00:00Z')],
  ];
  for (const [what, name, expected] of cases)
    it(`${what}: ${name}`, () => assert.equal(snapshotTime(name, 'daily', creation), expected));

  it('without a timestamp or a creation, no time', () => {
    assert.equal(snapshotTime('daily-manual', 'daily', undefined), undefined);
  });
});

describe('parseSchedule', () => {
  it('reads zfs-autobackup’s default into seconds (m is 30 days, y 365.25 days)', () => {
    const s = parseSchedule(SCHEDULE);
    assert.equal(s.newest, 10);
    assert.deepEqual(
      s.rules.map((r) => [r.text, r.period, r.ttl]),
      [
        ['1d1w', DAY, 7 * DAY],
        ['1w1m', 7 * DAY, 30 * DAY],
        ['1m1y', 30 * DAY, 365.25 * DAY],
      ],
    );
  });

  it('takes spaces, capitals and minutes', () => {
    const s = parseSchedule(' 24 , 1H1D, 15min1h ');
    assert.equal(s.newest, 24);
    assert.deepEqual(
      s.rules.map((r) => [r.period, r.ttl]),
      [
        [3600, DAY],
        [900, 3600],
      ],
    );
  });

  const bad: Array<[string, string, string]> = [
    ['', 'empty', 'empty'],
    [' , ', 'only commas', 'empty'],
    ['1d1x', 'an unknown unit', '"x"'],
    ['10,1w1q', 'an unknown unit after a valid part', '"1w1q"'],
    ['1w1d', 'a period longer than its ttl', '"1w1d"'],
    ['0d1w', 'a period of 0', '"0d1w"'],
    ['1d', 'a period without a ttl', '"1d"'],
    ['abc', 'words', '"abc"'],
  ];
  for (const [text, what, part] of bad)
    it(`rejects ${what} (${JSON.stringify(text)}), naming it and showing a valid schedule`, () => {
      assert.throws(
        () => parseSchedule(text),
        (e: Error) => e.message.includes(part) && e.message.includes(`"${SCHEDULE}"`),
      );
    });
});

describe('describeRule', () => {
  const texts: Array<[string, string]> = [
    ['1d1w', 'one per day for 1 week'],
    ['1w1m', 'one per week for 1 month'],
    ['1m1y', 'one per month for 1 year'],
    ['2h3d', 'one per 2 hours for 3 days'],
    ['15min1h', 'one per 15 minutes for 1 hour'],
    ['10s1min', 'one per 10 seconds for 1 minute'],
    ['1y5y', 'one per year for 5 years'],
    ['01d07d', 'one per day for 7 days'],
    ['02h01d', 'one per 2 hours for 1 day'],
  ];
  for (const [text, expected] of texts)
    it(`${text}: ${expected}`, () => assert.equal(describeRule(parseSchedule(text).rules[0]!), expected));
});
