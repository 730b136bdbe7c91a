import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasetHealth, formatAge, parseDuration, vmBackupAge } from '../../src/status/health.js';
import type { DatasetState } from '../../src/zfs/list.js';

const snap = (name: string, guid: string, creation: number) => ({
  name,
  guid,
  createtxg: creation,
  creation,
  userrefs: 0,
});
const ds = (name: string, snaps: ReturnType<typeof snap>[], extra: Partial<DatasetState> = {}): DatasetState => ({
  name,
  type: 'filesystem',
  guid: 'g',
  snapshots: snaps,
  ...extra,
});

describe('status health', () => {
  it('finds the newest common snapshot by guid and its age', () => {
    const h = datasetHealth(
      'z/a',
      'b/a',
      ds('z/a', [snap('daily-1', '1', 100), snap('daily-2', '2', 200)]),
      ds('b/a', [snap('daily-1', '1', 100), snap('daily-2', '2', 200)]),
      1000,
    );
    assert.equal(h.chain, 'ok');
    assert.deepEqual([h.newestCommon?.name, h.newestCommon?.ageSeconds], ['daily-2', 800]);
    assert.deepEqual(h.localGroups, { daily: 2 });
  });

  it('tells missing, diverged, no-common and pending resumes apart', () => {
    assert.equal(datasetHealth('z/a', 'b/a', ds('z/a', [snap('d-1', '1', 1)]), undefined, 10).chain, 'missing');
    assert.equal(
      datasetHealth(
        'z/a',
        'b/a',
        ds('z/a', [snap('d-1', '1', 1)]),
        ds('b/a', [snap('d-1', '1', 1), snap('x-2', '9', 2)]),
        10,
      ).chain,
      'diverged',
    );
    assert.equal(
      datasetHealth('z/a', 'b/a', ds('z/a', [snap('d-1', '1', 1)]), ds('b/a', [snap('d-1', '7', 1)]), 10).chain,
      'no-common',
    );
    assert.equal(
      datasetHealth('z/a', 'b/a', ds('z/a', []), ds('b/a', [], { resumeToken: 't' }), 10).resumePending,
      true,
    );
  });

  it('ages a VM by its worst dataset', () => {
    const fresh = datasetHealth(
      'z/a',
      'b/a',
      ds('z/a', [snap('d-1', '1', 90)]),
      ds('b/a', [snap('d-1', '1', 90)]),
      100,
    );
    const old = datasetHealth('z/b', 'b/b', ds('z/b', [snap('d-1', '2', 10)]), ds('b/b', [snap('d-1', '2', 10)]), 100);
    assert.equal(vmBackupAge([fresh, old]), 90);
    assert.equal(vmBackupAge([fresh, datasetHealth('z/c', 'b/c', ds('z/c', []), undefined, 100)]), Infinity);
  });

  it('parses and formats durations', () => {
    assert.equal(parseDuration('26h'), 93600);
    assert.equal(parseDuration('90m'), 5400);
    assert.throws(() => parseDuration('soon'));
    assert.equal(formatAge(Infinity), 'never');
    assert.equal(formatAge(5400), '90m');
  });
});
