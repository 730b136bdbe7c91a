import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransferPool } from '../../src/backup/execute.js';
import type { TransferStep } from '../../src/plan/steps.js';

const step = (dataset: string, target: string): TransferStep => ({ kind: 'transfer', dataset, source: dataset, target, mode: 'full', sends: [], isOrigin: false });

describe('transfers side by side', () => {
  it('runs independent transfers at once, but a child after its parent and a clone after its origin, within the limit', async () => {
    const events: string[] = [];
    let running = 0;
    let peak = 0;
    const work = (name: string, ms: number) => async () => {
      running += 1;
      peak = Math.max(peak, running);
      events.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`end ${name}`);
      running -= 1;
    };
    const pool = new TransferPool(2);
    await pool.start({ ...step('zones/vm', 'b/img'), isOrigin: true }, work('origin', 40));
    await pool.start(step('zones/vm', 'b/vm'), work('clone', 10));
    await pool.start(step('zones/vm/data', 'b/vm/data'), work('child', 10));
    await pool.start(step('zones/other', 'b/other'), work('other', 10));
    await pool.start(step('zones/third', 'b/third'), work('third', 10));
    await pool.drain();
    const at = (e: string) => events.indexOf(e);
    assert.ok(at('start other') < at('end origin'), 'an independent transfer does not wait');
    assert.ok(at('start clone') > at('end origin'), 'the clone waits for its origin');
    assert.ok(at('start child') > at('end clone'), 'the child waits for its parent');
    assert.equal(peak, 2);
    assert.equal(events.length, 10);
  });
});
