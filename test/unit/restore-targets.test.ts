import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listAcrossTargets, pickAcrossTargets } from '../../src/restore/across-targets.js';
import type { ListedSet } from '../../src/restore/list-sets.js';
import { renderTargetSetList } from '../../src/restore/list-sets.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const set = (snapshot: string, created?: number): ListedSet => ({
  snapshot,
  consistency: 'crash-consistent',
  ...(created === undefined ? {} : { created }),
});
/** A target whose source lists `sets`, or cannot be reached. */
const target = (name: string, sets: ListedSet[] | Error) => ({
  name,
  listSets: async () => {
    if (sets instanceof Error) throw sets;
    return sets;
  },
});

describe('restore across targets', () => {
  it('picks the newest complete set over all targets, whichever target lists it', async () => {
    const listed = await listAcrossTargets([
      target('bk1', [set('daily-b2', 200), set('daily-b1', 100)]),
      target('offsite', [set('daily-b3', 300), set('daily-b2', 190)]),
    ]);
    assert.deepEqual(pickAcrossTargets(listed), { target: 'offsite', snapshot: 'daily-b3', unreachable: [] });
    const older = await listAcrossTargets([
      target('bk1', [set('daily-b4', 400)]),
      target('offsite', [set('daily-b3', 300)]),
    ]);
    assert.deepEqual(pickAcrossTargets(older), { target: 'bk1', snapshot: 'daily-b4', unreachable: [] });
  });

  it('one snapshot on several targets is a tie, which goes to the first configured target', async () => {
    // the bucket records when the run started, the backup host when the snapshot was taken: still one moment
    const listed = await listAcrossTargets([
      target('offsite', [set('daily-b2', 195)]),
      target('bk1', [set('daily-b2', 200)]),
    ]);
    assert.deepEqual(pickAcrossTargets(listed), { target: 'offsite', snapshot: 'daily-b2', unreachable: [] });
  });

  it('skips a target that cannot be reached when another has a complete set, and names it', async () => {
    const listed = await listAcrossTargets([
      target('bk1', new Error('connect ECONNREFUSED 10.0.0.9:22')),
      target('offsite', [set('daily-b1', 100)]),
    ]);
    assert.deepEqual(pickAcrossTargets(listed), {
      target: 'offsite',
      snapshot: 'daily-b1',
      unreachable: [{ target: 'bk1', error: 'connect ECONNREFUSED 10.0.0.9:22' }],
    });
  });

  it('is an error naming every target when none has a complete set', async () => {
    const listed = await listAcrossTargets([
      target('bk1', new Error('connect ECONNREFUSED 10.0.0.9:22')),
      target('offsite', []),
    ]);
    assert.deepEqual(pickAcrossTargets(listed), {
      error:
        'no complete backup set on any target (bk1: connect ECONNREFUSED 10.0.0.9:22; offsite: no complete backup set)',
    });
  });

  it('--snapshot without --target takes the first target that has that set complete', async () => {
    const listed = await listAcrossTargets([
      target('bk1', [set('daily-b2', 200)]),
      target('offsite', [set('daily-b3', 300), set('daily-b1', 100)]),
      target('offsite2', [set('daily-b1', 100)]),
    ]);
    assert.deepEqual(pickAcrossTargets(listed, 'daily-b1'), {
      target: 'offsite',
      snapshot: 'daily-b1',
      unreachable: [],
    });
    assert.deepEqual(pickAcrossTargets(listed, 'daily-b9'), {
      error:
        'no complete backup set daily-b9 on any target (bk1: complete sets are daily-b2; offsite: complete sets are daily-b3, daily-b1; offsite2: complete sets are daily-b1)',
    });
  });

  it('a set without a known time loses to one with a time', async () => {
    const listed = await listAcrossTargets([target('bk1', [set('daily-b1')]), target('offsite', [set('daily-b0', 1)])]);
    assert.equal((pickAcrossTargets(listed) as { target: string }).target, 'offsite');
  });

  it('--list shows every target, with a target column and why a target was not listed', async () => {
    const listed = await listAcrossTargets([
      target('bk1', [set('daily-b2', 200), set('daily-b1', 100)]),
      target('offsite', new Error('no backups of VM here')),
    ]);
    assert.equal(
      renderTargetSetList(VM, listed),
      [
        `VM ${VM}: 2 complete backup set(s) on 2 target(s), newest first (restore one with --target NAME --snapshot NAME)`,
        '  TARGET   SET',
        '  bk1      daily-b2  crash-consistent',
        '  bk1      daily-b1  crash-consistent',
        '  offsite  (not listed: no backups of VM here)',
      ].join('\n'),
    );
  });
});
