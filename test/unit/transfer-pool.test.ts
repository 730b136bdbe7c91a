import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransferPool } from '../../src/backup/execute.js';
import { tuning } from '../../src/transfer/tuning.js';
import type { TransferStep } from '../../src/plan/steps.js';

const step = (dataset: string, target: string): TransferStep => ({
  kind: 'transfer',
  vmDataset: dataset,
  source: dataset,
  target,
  mode: 'full',
  sends: [],
  carriesImage: false,
});

/** Work that records when it starts and ends, and how many ran at once at the most. */
function timeline() {
  const events: string[] = [];
  let running = 0;
  const record = {
    events,
    peak: 0,
    at: (event: string) => events.indexOf(event),
    work: (name: string, ms: number) => async () => {
      running += 1;
      record.peak = Math.max(record.peak, running);
      events.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`end ${name}`);
      running -= 1;
    },
  };
  return record;
}

describe('transfers side by side', () => {
  it('runs independent transfers at once, but a child after its parent and a clone after its origin, within the limit', async () => {
    const record = timeline();
    const { events, work, at } = record;
    const pool = new TransferPool(2);
    await pool.start({ ...step('zones/vm', 'b/img'), carriesImage: true }, false, work('origin', 40));
    await pool.start(step('zones/vm', 'b/vm'), false, work('clone', 10));
    await pool.start(step('zones/vm/data', 'b/vm/data'), false, work('child', 10));
    await pool.start(step('zones/other', 'b/other'), false, work('other', 10));
    await pool.start(step('zones/third', 'b/third'), false, work('third', 10));
    await pool.drain();
    assert.ok(at('start other') < at('end origin'), 'an independent transfer does not wait');
    assert.ok(at('start clone') > at('end origin'), 'the clone waits for its origin');
    assert.ok(at('start child') > at('end clone'), 'the child waits for its parent');
    assert.equal(record.peak, 2);
    assert.equal(events.length, 10);
  });

  it('every clone of one origin waits for it, however many share it (two disks of one image)', async () => {
    const { work, at } = timeline();
    const pool = new TransferPool(4);
    // the origin's transfer is planned for the first clone; the second one names only the origin snapshot
    await pool.start(
      { ...step('zones/vm-disk0', 'b/img'), carriesImage: true, source: 'zones/img' },
      false,
      work('origin', 40),
    );
    await pool.start(
      { ...step('zones/vm-disk0', 'b/vm-disk0'), mode: 'incremental', cloneOrigin: 'b/img@final' },
      false,
      work('disk0', 10),
    );
    await pool.start(
      { ...step('zones/vm-disk1', 'b/vm-disk1'), mode: 'incremental', cloneOrigin: 'b/img@final' },
      false,
      work('disk1', 10),
    );
    await pool.start(
      { ...step('zones/other/disk0', 'b/other/disk0'), mode: 'incremental', cloneOrigin: 'b/img@final' },
      false,
      work('other VM', 10),
    );
    await pool.drain();
    for (const clone of ['disk0', 'disk1', 'other VM'])
      assert.ok(at(`start ${clone}`) > at('end origin'), `${clone} waits for the origin`);
  });

  it("an incremental stream into a target that exists does not wait for its parent's", async () => {
    const { work, at } = timeline();
    const incremental = (dataset: string, target: string): TransferStep => ({
      ...step(dataset, target),
      mode: 'incremental',
      common: `${target}@a`,
    });
    const pool = new TransferPool(4);
    await pool.start(incremental('zones/vm', 'b/vm'), true, work('parent', 40));
    await pool.start(incremental('zones/vm/data', 'b/vm/data'), true, work('child', 10));
    await pool.start(step('zones/vm/new', 'b/vm/new'), true, work('new child', 10));
    await pool.drain();
    assert.ok(at('start child') < at('end parent'), 'the existing child goes at once');
    assert.ok(at('start new child') > at('end parent'), 'a child whose target is created waits for its parent');
  });

  it('runs more small streams at once than large ones, and never more large ones than the limit', async () => {
    let running = 0;
    let large = 0;
    let peak = 0;
    let peakLarge = 0;
    const work = (isLarge: boolean) => async () => {
      running += 1;
      if (isLarge) large += 1;
      peak = Math.max(peak, running);
      peakLarge = Math.max(peakLarge, large);
      await new Promise((r) => setTimeout(r, 20));
      running -= 1;
      if (isLarge) large -= 1;
    };
    const tuned = tuning({ transferConcurrency: 2 }, 2);
    const pool = new TransferPool(tuned.transfers, tuned.streams);
    for (let i = 0; i < 24; i++) {
      const isLarge = i % 4 === 0;
      await pool.start(step(`zones/d${i}`, `b/d${i}`), !isLarge, work(isLarge));
    }
    await pool.drain();
    assert.equal(peak, 8, 'small streams fill four times the limit');
    assert.ok(peakLarge <= 2, `at most 2 large at once (saw ${peakLarge})`);
  });
});

describe('tuning from the CPU count and sshd MaxSessions', () => {
  const cases: Array<[string, Parameters<typeof tuning>[0], number, ReturnType<typeof tuning>]> = [
    ['2 CPUs, defaults: as the test guest always ran', {}, 2, { transfers: 4, streams: 8, seriesLanes: 4 }],
    [
      '1 CPU: still four large streams (they wait on disks and network)',
      {},
      1,
      { transfers: 4, streams: 8, seriesLanes: 2 },
    ],
    ['16 CPUs: eight large, small ones within MaxSessions', {}, 16, { transfers: 8, streams: 8, seriesLanes: 8 }],
    ['one at a time asked', { transferConcurrency: 1 }, 8, { transfers: 1, streams: 4, seriesLanes: 4 }],
    [
      "a larger setting is the operator's choice",
      { transferConcurrency: 12 },
      2,
      { transfers: 12, streams: 12, seriesLanes: 4 },
    ],
    ['MaxSessions 30 on the backup host', { sshMaxSessions: 30 }, 16, { transfers: 8, streams: 28, seriesLanes: 28 }],
    [
      'MaxSessions 4: two sessions for streams, two for control',
      { sshMaxSessions: 4 },
      2,
      { transfers: 2, streams: 2, seriesLanes: 2 },
    ],
  ];
  for (const [name, settings, cpus, expected] of cases)
    it(name, () => assert.deepEqual(tuning(settings, cpus), expected));
});
