import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backupHostDatasets,
  renderSetList,
  renderTargetSetList,
  storedDatasets,
  type ListedSet,
} from '../../src/restore/list-sets.js';
import type { VmCatalog } from '../../src/s3/catalog.js';
import type { SetManifest, StoredStream } from '../../src/s3/keys.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const ROOT = `zones/${VM}`;
const BACKUP = `backup/zones/${VM}`;

describe("restore --list: each set's datasets with sizes", () => {
  it('backup host: one recursive snapshot listing gives every set its datasets, named as backed up, vmadm order first', () => {
    const listing = [
      `${BACKUP}@daily-b1\t1000`,
      `${BACKUP}@daily-b2\t2000`,
      `${BACKUP}/data@daily-b2\t300`,
      `${BACKUP}/data/pgsql@daily-b2\t40`,
      `${BACKUP}/data/pgsql@other\t41`,
      `${BACKUP}-disk0@daily-b2\t5000`,
      `${BACKUP}2@daily-b2\t7`,
    ].join('\n');
    const roots = [
      { source: ROOT, backup: BACKUP },
      { source: `${ROOT}-disk0`, backup: `${BACKUP}-disk0` },
    ];
    const sets = backupHostDatasets(listing, roots, ['daily-b2', 'daily-b1']);
    assert.deepEqual(sets.get('daily-b2'), [
      { name: ROOT, bytes: 2000, size: 'referenced' },
      { name: `${ROOT}/data`, bytes: 300, size: 'referenced' },
      { name: `${ROOT}/data/pgsql`, bytes: 40, size: 'referenced' },
      { name: `${ROOT}-disk0`, bytes: 5000, size: 'referenced' },
    ]);
    assert.deepEqual(sets.get('daily-b1'), [{ name: ROOT, bytes: 1000, size: 'referenced' }]);
  });

  it('object store: the stored bytes of the chain of objects a dataset needs, unknown when its chain is broken', () => {
    const stream = (dataset: string, snapshot: string, guid: string, parent?: string): StoredStream => ({
      key: `zc/${VM}/${dataset}/${snapshot}`,
      dataset,
      snapshot,
      guid,
      createtxg: Number(guid),
      vm: VM,
      compression: 'zstd',
      encrypted: false,
      ...(parent ? { parent: { dataset, snapshot: 'daily-b1', guid: parent } } : {}),
    });
    const streams = [
      { ...stream(ROOT, 'daily-b1', '1'), size: 100 },
      { ...stream(ROOT, 'daily-b2', '2', '1'), size: 20 },
      { ...stream(`${ROOT}/data`, 'daily-b2', '4', '3'), size: 7 },
    ];
    const set = (snapshot: string, datasets: string[]) => ({ snapshot, datasets }) as SetManifest;
    const catalog: VmCatalog = {
      vm: VM,
      streams: new Map(streams.map((s) => [s.key, s])),
      sets: [set('daily-b1', [ROOT]), set('daily-b2', [ROOT, `${ROOT}/data`])],
      unknown: [],
    };
    assert.deepEqual(storedDatasets(catalog, 'daily-b2'), [
      { name: ROOT, bytes: 120, size: 'stored' },
      { name: `${ROOT}/data`, size: 'stored' },
    ]);
    assert.deepEqual(storedDatasets(catalog, 'daily-b1'), [{ name: ROOT, bytes: 100, size: 'stored' }]);
  });

  it('renders datasets under their set, and says once what the sizes are', () => {
    const sets: ListedSet[] = [
      {
        snapshot: 'daily-b2',
        consistency: 'crash-consistent',
        datasets: [
          { name: ROOT, bytes: 2048, size: 'stored' },
          { name: `${ROOT}/data`, size: 'stored' },
        ],
      },
      { snapshot: 'daily-b1', consistency: 'crash-consistent', datasets: [{ name: ROOT, bytes: 10, size: 'stored' }] },
    ];
    assert.equal(
      renderSetList(VM, sets),
      [
        `VM ${VM}: 2 complete backup set(s), newest first (restore one with --snapshot NAME)`,
        '  daily-b2  crash-consistent',
        `      ${ROOT}       2.0 KiB`,
        `      ${ROOT}/data  size unknown`,
        '  daily-b1  crash-consistent',
        `      ${ROOT}  10 B`,
        'sizes (stored): stored, compressed (and encrypted where configured): the stream objects a restore of the dataset downloads',
        'restore one dataset beside the VM with --dataset NAME --as NEWNAME',
      ].join('\n'),
    );
    assert.equal(
      renderTargetSetList(VM, [
        { target: 'bk1', sets: [{ ...sets[1]!, datasets: [{ name: ROOT, bytes: 10, size: 'referenced' }] }] },
        { target: 's3', sets: [sets[1]!] },
      ]),
      [
        `VM ${VM}: 2 complete backup set(s) on 2 target(s), newest first (restore one with --target NAME --snapshot NAME)`,
        '  TARGET  SET',
        '  bk1     daily-b1  crash-consistent',
        `              ${ROOT}  10 B`,
        '  s3      daily-b1  crash-consistent',
        `              ${ROOT}  10 B`,
        'sizes (referenced): referenced by the dataset at that snapshot on the backup host',
        'sizes (stored): stored, compressed (and encrypted where configured): the stream objects a restore of the dataset downloads',
        'restore one dataset beside the VM with --dataset NAME --as NEWNAME',
      ].join('\n'),
    );
  });
});
