import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holdCommands } from '../../src/zfs/holds.js';

const VM = 'zones/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';

describe('hold and release commands', () => {
  it('a tree whose every dataset is listed becomes one -r command on its top dataset', () => {
    const snapshots = [`${VM}@d-2`, `${VM}/data@d-2`, `${VM}/data/a@d-2`, `${VM}/data/b@d-2`];
    assert.deepEqual(holdCommands('hold', 't', snapshots, []), [['zfs', 'hold', '-r', 't', `${VM}@d-2`]]);
  });

  it('a sibling outside the tree (a KVM -disk0 volume) is named on its own', () => {
    const snapshots = [`${VM}@d-2`, `${VM}/data@d-2`, `${VM}-disk0@d-2`];
    assert.deepEqual(holdCommands('release', 't', snapshots, []), [
      ['zfs', 'release', '-r', 't', `${VM}@d-2`],
      ['zfs', 'release', 't', `${VM}-disk0@d-2`],
    ]);
  });

  it('a failed or skipped dataset below keeps its tree from -r: everything is named instead', () => {
    const snapshots = [`${VM}@d-2`, `${VM}/data/a@d-2`];
    assert.deepEqual(holdCommands('hold', 't', snapshots, [`${VM}/data/b`]), [['zfs', 'hold', 't', `${VM}@d-2`, `${VM}/data/a@d-2`]]);
    // a kept dataset elsewhere does not matter
    assert.deepEqual(holdCommands('hold', 't', snapshots, [`${VM}-disk0`]), [['zfs', 'hold', '-r', 't', `${VM}@d-2`]]);
  });

  it('only snapshots of the same name collapse; a lone dataset is named as it is', () => {
    const snapshots = [`${VM}@d-1`, `${VM}/data@d-2`];
    assert.deepEqual(holdCommands('release', 't', snapshots, []), [['zfs', 'release', 't', `${VM}@d-1`, `${VM}/data@d-2`]]);
    assert.deepEqual(holdCommands('hold', 't', [`${VM}@d-2`], []), [['zfs', 'hold', 't', `${VM}@d-2`]]);
  });

  it('a middle dataset whose parent is not listed heads its own -r (zones is not under zones2)', () => {
    const snapshots = [`${VM}/data@d-2`, `${VM}/data/a@d-2`, `zones2/x@d-2`, `zones2/x/y@d-2`];
    assert.deepEqual(holdCommands('hold', 't', snapshots, []), [['zfs', 'hold', '-r', 't', `${VM}/data@d-2`, 'zones2/x@d-2']]);
  });
});
