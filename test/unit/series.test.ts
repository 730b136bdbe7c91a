import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { executePlan } from '../../src/backup/execute.js';
import { SERIES_STREAM_BYTES, seriesLanes } from '../../src/backup/series.js';
import { silentLog } from '../../src/log.js';
import type { SeriesItem, TransferStrategy } from '../../src/transfer/strategy.js';
import type { Step, TransferStep } from '../../src/plan/steps.js';
import { incrementalStep, quietHost } from './transfer-steps.js';

const small = incrementalStep;
/** A step before the transfers (the planner's steps start after the run's snapshot). */
const before: Step = { kind: 'protect', targets: [] };
const names = (lanes: TransferStep[][]) => lanes.map((lane) => lane.map((s) => s.vmDataset.slice('zones/'.length)));

describe('series of small streams', () => {
  it('takes the small incrementals into existing targets, at least two to a lane and at most four lanes', () => {
    assert.deepEqual(names(seriesLanes([before, small('a'), small('b')], 1, 4)), [['a', 'b']]);
    assert.deepEqual(seriesLanes([before, small('a')], 1, 4), [], 'one stream is not a series');
    const many = Array.from({ length: 100 }, (_, i) => small(`d${i}`));
    const lanes = seriesLanes([before, ...many], 1, 4);
    assert.equal(lanes.length, 4);
    assert.deepEqual(
      lanes.map((l) => l.length),
      [25, 25, 25, 25],
    );
    assert.equal(new Set(lanes.flat()).size, 100, 'each stream once');
    assert.equal(seriesLanes([before, ...many.slice(0, 10)], 1, 4).length, 2);
  });

  it('leaves out what a series cannot carry', () => {
    const steps: Step[] = [
      before,
      { kind: 'create-parent', dataset: 'b/new' },
      small('a'),
      small('b'),
      small('big', { added: SERIES_STREAM_BYTES }),
      small('unknown', { added: undefined }),
      small('new', { common: undefined, mode: 'full' }),
      small('rolled', { rollback: true }),
      small('clone', { cloneOrigin: 'b/img@x' }),
      small('clone', { carriesImage: true, target: 'b/img' }),
      small('two', {
        sends: [
          { from: 'zones/two@a', to: 'zones/two@b' },
          { from: 'zones/two@b', to: 'zones/two@c' },
        ],
      }),
      small('c'),
      { kind: 'hold', side: 'local', tag: 't', snapshots: [], others: [] },
      small('after-the-block'),
    ];
    assert.deepEqual(names(seriesLanes(steps, 1, 4)), [['a', 'b', 'c']]);
  });

  it('a series that stops fails the stream it stopped at; the ones after it go one by one', async () => {
    const host = (label: string) => quietHost(label);
    const series: SeriesItem[][] = [];
    const alone: string[] = [];
    const strategy: TransferStrategy = {
      name: 'ssh',
      transferSeries: async (items) => {
        series.push([...items]);
        return {
          received: [
            { bytes: 312, seconds: 1 },
            { bytes: 624, seconds: 1 },
          ],
          error: 'receive exited 1: has been modified; it stopped at stream 3',
        };
      },
      transfer: async (send, receive) => {
        alone.push(receive.at(-1)!);
        if (receive.at(-1) === 'b/e') throw new Error('e failed on its own');
        return { bytes: 100, seconds: 0.5 };
      },
      describe: () => '',
      close: async () => {},
    };
    const steps: Step[] = [before, ...['a', 'b', 'c', 'd', 'e', 'f'].map((n) => small(n))];
    const { tallies } = await executePlan(steps, {
      local: host('local'),
      remote: host('remote'),
      strategy,
      log: silentLog,
    });
    assert.equal(series.length, 1);
    assert.deepEqual(
      series[0]!.map((item) => item.receive.at(-1)),
      ['b/a', 'b/b', 'b/c', 'b/d', 'b/e', 'b/f'],
    );
    assert.deepEqual(alone, ['b/d', 'b/e', 'b/f'], 'after the stop, one by one in order');
    const o = (n: string) => tallies.get(`zones/${n}`)!;
    assert.deepEqual([o('a').bytes, o('b').bytes, o('d').bytes, o('f').bytes], [312, 624, 100, 100]);
    assert.match(o('c').error!, /stopped at stream 3.*run again with --rollback to roll it back to b\/c@a/);
    assert.equal(o('e').error, 'e failed on its own');
    assert.deepEqual(
      ['a', 'b', 'd', 'f'].map((n) => o(n).error),
      [undefined, undefined, undefined, undefined],
    );
  });
});
