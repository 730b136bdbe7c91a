import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBackup } from '../../src/plan/backup-plan.js';
import type { RotateStep } from '../../src/plan/steps.js';
import { planS3Backup } from '../../src/s3/plan.js';
import { streamKey, type StoredStream } from '../../src/s3/keys.js';
import type { DatasetState } from '../../src/zfs/list.js';

/**
 * Rules that must hold whatever the target: each case runs against the backup host's planner and
 * the object store's, from the same local history, so the two cannot drift apart again.
 */

const VM = 'zones/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const BASE = 'backup/zones';
const TARGET = `${BASE}/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44`;

interface Snap {
  name: string;
  guid: string;
  /** Holds by anyone (zfs holds), counted as `userrefs`. */
  userrefs?: number;
}

function dataset(name: string, snaps: readonly Snap[]): DatasetState {
  return {
    name,
    type: 'filesystem',
    guid: `g-${name}`,
    snapshots: snaps.map((s, i) => ({
      name: s.name,
      guid: s.guid,
      createtxg: i + 1,
      creation: i + 1,
      userrefs: s.userrefs ?? 0,
    })),
  };
}

interface Case {
  local: Snap[];
  /** Snapshots already on the target (by name, with the same guids). */
  stored: string[];
  localLimit?: number;
  remoteLimit?: number;
}

/** The local rotation each target's planner chooses for the same history. */
const targets: Record<string, (c: Case) => string[]> = {
  'backup host': (c) => {
    const local = dataset(VM, c.local);
    const remote = dataset(
      TARGET,
      c.local.filter((s) => c.stored.includes(s.name)).map((s) => ({ ...s, userrefs: 0 })),
    );
    const plan = planBackup({
      datasets: [VM],
      snapshot: 'daily-new',
      group: 'daily',
      basePath: BASE,
      local: new Map([[VM, local]]),
      remote: new Map([
        [BASE, dataset(BASE, [])],
        [TARGET, remote],
      ]),
      localLimit: c.localLimit,
      remoteLimit: c.remoteLimit,
    });
    return localDestroys(plan.steps);
  },
  'object store': (c) => {
    const local = dataset(VM, c.local);
    const streams = new Map<string, StoredStream & { size: number }>();
    let parent: StoredStream['parent'];
    for (const s of c.local.filter((x) => c.stored.includes(x.name))) {
      const key = streamKey('p', 'vm', VM, s.name);
      streams.set(key, {
        key,
        dataset: VM,
        snapshot: s.name,
        guid: s.guid,
        createtxg: 1,
        parent,
        vm: 'vm',
        compression: 'zstd',
        encrypted: false,
        size: 1,
      });
      parent = { dataset: VM, snapshot: s.name, guid: s.guid };
    }
    const plan = planS3Backup({
      vm: 'vm',
      prefix: 'p',
      datasets: [VM],
      local: new Map([[VM, local]]),
      catalog: { vm: 'vm', streams, sets: [], unknown: [] },
      snapshot: 'daily-new',
      group: 'daily',
      compression: 'zstd',
      encrypted: false,
      localLimit: c.localLimit,
      remoteLimit: c.remoteLimit,
    });
    return localDestroys(plan.steps);
  },
};

function localDestroys(steps: ReadonlyArray<{ kind: string }>): string[] {
  return steps
    .filter((s): s is RotateStep => s.kind === 'rotate' && (s as RotateStep).side === 'local')
    .flatMap((s) => s.destroy);
}

const cases: Array<{ name: string; case: Case; destroyed: string[] }> = [
  {
    name: 'keeps the newest localLimit of the group',
    case: {
      local: [
        { name: 'daily-1', guid: 'a' },
        { name: 'daily-2', guid: 'b' },
        { name: 'daily-3', guid: 'c' },
      ],
      stored: ['daily-1', 'daily-2', 'daily-3'],
      localLimit: 2,
    },
    destroyed: ['daily-1', 'daily-2'],
  },
  {
    name: 'never destroys a snapshot another tool holds (zfs destroy would refuse it)',
    case: {
      local: [
        { name: 'daily-1', guid: 'a', userrefs: 1 },
        { name: 'daily-2', guid: 'b' },
        { name: 'daily-3', guid: 'c' },
      ],
      stored: ['daily-1', 'daily-2', 'daily-3'],
      localLimit: 1,
    },
    destroyed: ['daily-2', 'daily-3'],
  },
  {
    name: "leaves other groups' and foreign snapshots alone",
    case: {
      local: [
        { name: 'vmsnap-x', guid: 'v' },
        { name: 'daily2-1', guid: 'd' },
        { name: 'daily-1', guid: 'a' },
      ],
      stored: ['daily-1'],
      localLimit: 1,
    },
    destroyed: ['daily-1'],
  },
];

for (const [target, localRotationOf] of Object.entries(targets)) {
  describe(`local rotation, ${target}`, () => {
    for (const c of cases) it(c.name, () => assert.deepEqual(localRotationOf(c.case), c.destroyed));
  });
}
