import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import {
  averageRate,
  formatDuration,
  progressLines,
  RateMeter,
  showsProgress,
  startProgressTicker,
  streamLine,
  type StreamView,
} from '../../src/report/progress.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('progress lines', () => {
  it('say dataset, target, bytes of the estimate, rate and time left', () => {
    const s: StreamView = {
      dataset: 'zones/u/disk0',
      target: 'backup1',
      bytes: GiB,
      estimatedBytes: 4 * GiB,
      startedAt: 0,
    };
    assert.equal(streamLine(s, 10 * MiB), 'zones/u/disk0 -> backup1: 1.0 GiB of ~4.0 GiB (25%) 10.0 MiB/s ETA 5m07s');
  });

  it('leave out the ETA without an estimate, without a rate, or once the estimate is passed', () => {
    const s: StreamView = { dataset: 'zones/u', target: 's3', bytes: 2048, startedAt: 0 };
    assert.equal(streamLine(s, 1024), 'zones/u -> s3: 2.0 KiB 1.0 KiB/s');
    assert.doesNotMatch(streamLine({ ...s, estimatedBytes: 4096 }, 0), /ETA/);
    assert.equal(
      streamLine({ ...s, estimatedBytes: 1024 }, 1024),
      'zones/u -> s3: 2.0 KiB of ~1.0 KiB (100%) 1.0 KiB/s',
    );
  });

  it('durations read at a glance', () => {
    assert.deepEqual([0, 12.4, 59.6, 65, 3599, 3600, 7620, 49 * 3600].map(formatDuration), [
      '0s',
      '12s',
      '1m00s',
      '1m05s',
      '59m59s',
      '1h00m',
      '2h07m',
      '2d01h',
    ]);
  });

  it('cap the list and say how many more', () => {
    const streams = Array.from({ length: 5 }, (_, i) => ({ dataset: `d${i}`, target: 't', bytes: 0, startedAt: 0 }));
    const lines = progressLines(streams, () => 0, 3);
    assert.equal(lines.length, 4);
    assert.equal(lines[3], '... and 2 more streams');
  });

  it('rates: average since the start, then follows a stall within a few samples', () => {
    const s: StreamView = { dataset: 'd', target: 't', bytes: 10 * MiB, startedAt: 0 };
    assert.equal(averageRate(s, 10_000), MiB);
    const meter = new RateMeter();
    assert.equal(meter.rate(s, 10_000), MiB);
    let rate = MiB;
    for (let t = 11_000; t <= 15_000; t += 1000) rate = meter.rate(s, t);
    assert.ok(rate < MiB / 5, `a stalled stream's rate falls: ${rate}`);
  });

  it('show only on a terminal, never with --json, --dry-run, under cron or on a dumb terminal', () => {
    assert.equal(showsProgress({ isTTY: true, term: 'xterm' }), true);
    assert.equal(showsProgress({ isTTY: undefined, term: 'xterm' }), false);
    assert.equal(showsProgress({ isTTY: true, json: true }), false);
    assert.equal(showsProgress({ isTTY: true, dryRun: true }), false);
    assert.equal(showsProgress({ isTTY: true, term: 'dumb' }), false);
  });
});

describe('the progress ticker', () => {
  it('redraws below what others write, erases before each foreign write, and gives write back on stop', async () => {
    const written: string[] = [];
    const out = {
      columns: 60,
      rows: 20,
      write: (text: string) => {
        written.push(text);
        return true;
      },
    };
    const ownWrite = out.write;
    let streams: StreamView[] = [
      { dataset: 'zones/a', target: 'b1', bytes: 5 * MiB, startedAt: Date.now() - 1000 },
      {
        dataset: 'zones/b-with-a-very-long-name-that-does-not-fit-the-terminal',
        target: 'b1',
        bytes: 0,
        startedAt: Date.now(),
      },
    ];
    const ticker = startProgressTicker(out as unknown as NodeJS.WriteStream, () => streams, 20);
    await sleep(70);
    const frame = written.at(-1)!;
    assert.match(frame, /^zones\/a -> b1: 5\.0 MiB/);
    for (const line of frame.trimEnd().split('\n')) assert.ok(line.length <= 59, `line fits: ${line}`);
    out.write('warning: something\n');
    assert.equal(written.at(-2), '\x1b[2A\r\x1b[J', 'the two drawn lines were erased first');
    assert.equal(written.at(-1), 'warning: something\n');
    streams = [];
    await sleep(50);
    ticker.stop();
    assert.equal(out.write, ownWrite);
    const count = written.length;
    await sleep(50);
    assert.equal(written.length, count, 'nothing drawn after stop');
  });

  it("leaves a stream whose write is its prototype's as it found it (process.stderr)", () => {
    const out = new PassThrough();
    const ticker = startProgressTicker(out as unknown as NodeJS.WriteStream, () => [], 1000);
    assert.ok(Object.hasOwn(out, 'write'));
    ticker.stop();
    assert.ok(!Object.hasOwn(out, 'write'));
  });
});
