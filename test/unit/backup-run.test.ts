import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupVm } from '../../src/backup/backup-vm.js';
import type { ConsistencyRecord } from '../../src/backup/hook-run.js';
import { CommandError, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import type { DatasetResult } from '../../src/report/types.js';
import type { PreparedTarget, Target, VmRun } from '../../src/target/target.js';

/**
 * The run loop with every target: one observation, one snapshot inside the hooks, each target's
 * part, local rotation once. Targets here are fakes that record what the loop asks of them.
 */

const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const ROOT = `zones/${UUID}`;
/** A second pool's dataset (delegated to the zone), so the run takes two snapshots. */
const DISK = `data/${UUID}-data`;

interface Snap {
  name: string;
  userrefs?: number;
}

/** A SmartOS host with one running VM (a root and a disk on another pool) and their snapshots. */
class VmHost implements Host {
  readonly label = 'local';
  readonly dryRun = false;
  readonly stats = new HostStats();
  readonly commands: Argv[] = [];
  constructor(
    private readonly snapshots: Snap[],
    private readonly failing: (argv: Argv) => boolean = () => false,
    private readonly metadata: Record<string, string> = {},
    /** `zfs holds` answers: tags by snapshot name (after `@`), on every dataset. */
    private readonly holds: Record<string, string[]> = {},
  ) {}
  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    if (options.mutates) this.commands.push(argv);
    const answer = (stdout: string, exitCode = 0) => {
      const result = { host: this.label, command: argv.join(' '), stdout, stderr: 'refused', exitCode };
      if (exitCode !== 0 && !options.allowExitCodes?.includes(exitCode)) throw new CommandError(result);
      return result;
    };
    if (this.failing(argv)) return answer('', 1);
    if (argv[0] === 'vmadm')
      return answer(
        JSON.stringify({
          uuid: UUID,
          alias: 'db01',
          brand: 'joyent',
          zfs_filesystem: ROOT,
          state: 'running',
          datasets: [DISK],
          internal_metadata: this.metadata,
        }),
      );
    if (argv[0] === 'zfs' && argv[1] === 'list') {
      const space = '0\t1000\t100000000\t0\t0';
      const lines = [ROOT, DISK].flatMap((dataset, d) => [
        `${dataset}\tfilesystem\t${d}1\t5\t1700000000\t-\t-\t0\t0\toff\ton\t${space}`,
        ...this.snapshots.map(
          (s, i) =>
            `${dataset}@${s.name}\tsnapshot\t${d}${i}9\t${i + 1}\t${1700000000 + i}\t-\t-\t${s.userrefs ?? 0}\t0\t-\t-\t${space}`,
        ),
      ]);
      return answer(`${lines.join('\n')}\n`);
    }
    if (argv[0] === 'zfs' && argv[1] === 'holds') {
      const named = argv.filter((a) => a.includes('@'));
      const lines = named.flatMap((full) =>
        (this.holds[full.split('@')[1]!] ?? []).map((tag) => `${full}\t${tag}\tThu Nov 14 2023`),
      );
      return answer(lines.map((l) => `${l}\n`).join(''));
    }
    if (argv[0] === 'imgadm' || argv[0] === 'zonecfg') return answer('', 1);
    return answer('');
  }
  spawn(): never {
    throw new Error('not used');
  }
  skipped(): void {}
  async close(): Promise<void> {}
}

/** A target that records what it was handed; `fails` makes its prepare or one dataset fail. */
class FakeTarget implements Target {
  readonly label: string;
  readonly holdTag?: string;
  run?: VmRun;
  consistency?: ConsistencyRecord;
  /** When execute ran, as seen from the host: the commands issued before it. */
  executedAfter?: number;
  constructor(
    readonly name: string,
    private readonly host: VmHost,
    private readonly options: {
      prepareError?: string;
      failDataset?: string;
      releasing?: string[];
      /** Its needsLocal: snapshots its streams start from. */
      needs?: string[];
      /** Whether it holds its newest common snapshot here (default true). */
      holdsLocal?: boolean;
    } = {},
  ) {
    this.label = `fake:${name}`;
    if (options.holdsLocal ?? true) this.holdTag = `zonecopy:${name}:daily`;
  }
  async prepare(run: VmRun): Promise<PreparedTarget> {
    this.run = run;
    if (this.options.prepareError) throw new Error(this.options.prepareError);
    return {
      problems: [],
      warnings: [],
      releasing: new Set(this.options.releasing ?? []),
      needsLocal: new Map((this.options.needs ?? []).map((full) => [full, 'incremental from it'])),
      execute: async (consistency) => {
        this.consistency = consistency;
        this.executedAfter = this.host.commands.length;
        const datasets = run.observed.datasets.map((dataset): DatasetResult => ({
          dataset,
          target: `${this.name}/${dataset}`,
          snapshot: run.snapshot,
          mode: 'incremental',
          bytes: 1,
          seconds: 0,
          result: dataset === this.options.failDataset ? 'failed' : 'ok',
          ...(dataset === this.options.failDataset ? { error: 'stream broke' } : {}),
          rotatedLocal: [],
          rotatedRemote: [],
        }));
        return { datasets, errors: [] };
      },
    };
  }
}

const settings = { group: 'daily', name: 'new', localRetention: { count: 1 } };
const now = () => new Date('2026-11-30T00:00:00Z');
const destroys = (host: VmHost) => host.commands.filter((c) => c[1] === 'destroy').map((c) => c.slice(2).join(' '));

describe('one run, several targets', () => {
  it('observes once, snapshots once inside the hooks, and gives every target the same snapshot and record', async () => {
    const host = new VmHost([{ name: 'daily-a' }], () => false, {
      zonecopy_pre_snapshot: 'pause',
      zonecopy_post_snapshot: 'resume',
    });
    const targets = [new FakeTarget('bk1', host), new FakeTarget('offsite', host)];
    const result = await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.deepEqual(result.errors, []);
    assert.equal(result.status, 'success');
    assert.deepEqual(
      host.commands.slice(0, 4).map((c) => c.slice(0, 3).join(' ')),
      [
        `zlogin ${UUID} pause`,
        `zfs snapshot ${ROOT}@daily-new`,
        `zfs snapshot ${DISK}@daily-new`,
        `zlogin ${UUID} resume`,
      ],
      'one snapshot per pool, inside one pair of hooks, before any target sends',
    );
    for (const target of targets) {
      assert.equal(target.run?.snapshot, 'daily-new');
      assert.equal(target.consistency?.consistency, 'application');
      assert.ok(target.executedAfter! >= 4, `${target.name} sends after the snapshot`);
    }
    assert.equal(targets[0]!.run?.observed, targets[1]!.run?.observed, 'one observation for both');
    assert.deepEqual(
      result.datasets.map((d) => `${d.targetName} ${d.dataset} ${d.result}`),
      [`bk1 ${ROOT} ok`, `bk1 ${DISK} ok`, `offsite ${ROOT} ok`, `offsite ${DISK} ok`],
    );
    assert.equal(result.backupHost, 'fake:bk1, fake:offsite');
    assert.deepEqual(destroys(host), [`${ROOT}@daily-a`, `${DISK}@daily-a`], 'local rotation once, after both');
    assert.deepEqual(result.datasets[0]!.rotatedLocal, [`${ROOT}@daily-a`]);
    assert.deepEqual(result.datasets[2]!.rotatedLocal, [], 'named once, on the first target');
  });

  it('a target that cannot be reached fails alone: the other gets the backup, its held snapshot stays here', async () => {
    const host = new VmHost(
      [{ name: 'daily-a', userrefs: 1 }, { name: 'daily-b' }],
      () => false,
      {},
      {
        'daily-a': ['zonecopy:offsite:daily'],
      },
    );
    const good = new FakeTarget('bk1', host);
    const down = new FakeTarget('offsite', host, { prepareError: 'connect ECONNREFUSED' });
    const result = await backupVm(UUID, settings, { local: host, targets: [good, down], log: silentLog, now });
    assert.deepEqual(result.errors, ['offsite: connect ECONNREFUSED']);
    assert.equal(result.status, 'partial');
    assert.ok(good.consistency, 'the reachable target sent');
    assert.deepEqual(
      destroys(host),
      [`${ROOT}@daily-b`, `${DISK}@daily-b`],
      "thinning goes on; daily-a, held as the unreachable target's newest common snapshot, stays",
    );
  });

  it("flags a target whose newest common snapshot (its hold's, here) is older than its staleAfter; not one that got this run's", async () => {
    const host = new VmHost(
      [{ name: 'daily-a', userrefs: 1 }, { name: 'daily-b' }],
      () => false,
      {},
      {
        'daily-a': ['zonecopy:offsite:daily'],
      },
    );
    const down = new FakeTarget('offsite', host, { prepareError: 'connect ECONNREFUSED' });
    const staleAfter = new Map([
      ['bk1', 86400],
      ['offsite', 86400],
    ]);
    const result = await backupVm(
      UUID,
      { ...settings, staleAfter },
      { local: host, targets: [new FakeTarget('bk1', host), down], log: silentLog, now },
    );
    // daily-a has no time in its name: its creation (the first listed snapshot's) counts
    const age = Date.parse('2026-11-30T00:00:00Z') / 1000 - 1700000000;
    assert.deepEqual(result.behind, [{ target: 'offsite', snapshot: 'daily-a', ageSeconds: age, staleAfter: 86400 }]);
  });

  it('a target that cannot be reached and holds no snapshot of it here (released, or never held): nothing is thinned', async () => {
    const host = new VmHost([{ name: 'daily-a' }, { name: 'daily-b' }]);
    const down = new FakeTarget('offsite', host, { prepareError: 'connect ECONNREFUSED' });
    await backupVm(UUID, settings, { local: host, targets: [new FakeTarget('bk1', host), down], log: silentLog, now });
    assert.deepEqual(destroys(host), [], "daily-b may be the unreachable target's last common snapshot");
  });

  it('a target that cannot be reached and holds nothing here (holds off): nothing is thinned here', async () => {
    const host = new VmHost([{ name: 'daily-a' }]);
    const down = new FakeTarget('offsite', host, { prepareError: 'connect ECONNREFUSED', holdsLocal: false });
    const warnings: string[] = [];
    const log = { ...silentLog, warn: (line: string) => warnings.push(line) };
    await backupVm(UUID, settings, { local: host, targets: [new FakeTarget('bk1', host), down], log, now });
    assert.deepEqual(destroys(host), [], "daily-a may be the unreachable target's last common snapshot");
    assert.match(warnings.join('\n'), /nothing thinned here: offsite was not reached and holds no snapshot here/);
  });

  it('a dataset one target failed keeps the snapshots its streams start from; the others thin', async () => {
    const host = new VmHost([{ name: 'daily-0' }, { name: 'daily-a' }]);
    const targets = [
      new FakeTarget('bk1', host, { needs: [`${ROOT}@daily-a`, `${DISK}@daily-a`] }),
      new FakeTarget('offsite', host, { failDataset: DISK, needs: [`${ROOT}@daily-a`, `${DISK}@daily-a`] }),
    ];
    const result = await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.equal(result.status, 'partial');
    assert.deepEqual(destroys(host), [`${ROOT}@daily-0,daily-a`, `${DISK}@daily-0`]);
  });

  it('a dataset failed at a target without holds is not thinned at all', async () => {
    const host = new VmHost([{ name: 'daily-a' }]);
    const targets = [new FakeTarget('bk1', host, { failDataset: DISK, holdsLocal: false })];
    await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.deepEqual(destroys(host), [`${ROOT}@daily-a`]);
  });

  it('never takes a snapshot held by another tool; one whose hold a target moves off this run may go', async () => {
    const host = new VmHost([
      { name: 'daily-a', userrefs: 1 },
      { name: 'daily-b', userrefs: 1 },
    ]);
    const targets = [
      new FakeTarget('bk1', host, { releasing: [`${ROOT}@daily-b`, `${DISK}@daily-b`] }),
      new FakeTarget('offsite', host),
    ];
    await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.deepEqual(destroys(host), [`${ROOT}@daily-b`, `${DISK}@daily-b`]);
  });

  it('a snapshot both targets release this run (two holds) may go', async () => {
    const host = new VmHost([{ name: 'daily-a', userrefs: 2 }]);
    const releasing = [`${ROOT}@daily-a`, `${DISK}@daily-a`];
    const targets = [new FakeTarget('bk1', host, { releasing }), new FakeTarget('offsite', host, { releasing })];
    await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.deepEqual(destroys(host), [`${ROOT}@daily-a`, `${DISK}@daily-a`]);
  });

  it('every target unreachable: the VM is still snapshotted and thinned here, each held snapshot kept', async () => {
    const host = new VmHost(
      [{ name: 'daily-a', userrefs: 2 }, { name: 'daily-b' }],
      () => false,
      {},
      {
        'daily-a': ['zonecopy:bk1:daily', 'zonecopy:offsite:daily'],
      },
    );
    const targets = [
      new FakeTarget('bk1', host, { prepareError: 'host key changed' }),
      new FakeTarget('offsite', host, { prepareError: 'no credentials' }),
    ];
    const result = await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.equal(result.status, 'failed');
    assert.deepEqual(result.errors, ['bk1: host key changed', 'offsite: no credentials']);
    assert.deepEqual(
      host.commands.map((c) => c.slice(1).join(' ')),
      [
        `snapshot ${ROOT}@daily-new`,
        `snapshot ${DISK}@daily-new`,
        `destroy ${ROOT}@daily-b`,
        `destroy ${DISK}@daily-b`,
      ],
    );
  });

  it('every target unreachable with snapshotWhenTargetsDown false: nothing is snapshotted', async () => {
    const host = new VmHost([{ name: 'daily-a' }]);
    const targets = [new FakeTarget('bk1', host, { prepareError: 'host key changed' })];
    const off = { ...settings, snapshotWhenTargetsDown: false };
    const result = await backupVm(UUID, off, { local: host, targets, log: silentLog, now });
    assert.equal(result.status, 'failed');
    assert.deepEqual(host.commands, []);
  });

  it('a failed snapshot of the second pool still resumes the zone, and no target sends', async () => {
    const host = new VmHost([], (argv) => argv[1] === 'snapshot' && argv.includes(`${DISK}@daily-new`), {
      zonecopy_pre_snapshot: 'pause',
      zonecopy_post_snapshot: 'resume',
    });
    const targets = [new FakeTarget('bk1', host)];
    const result = await backupVm(UUID, settings, { local: host, targets, log: silentLog, now });
    assert.equal(result.status, 'failed');
    assert.match(result.errors.join('\n'), /snapshot of pool data failed, nothing was sent/);
    assert.deepEqual(
      host.commands.map((c) => (c[1] === 'snapshot' ? c[2] : c.slice(0, 3).join(' '))),
      [`zlogin ${UUID} pause`, `${ROOT}@daily-new`, `${DISK}@daily-new`, `zlogin ${UUID} resume`],
    );
    assert.equal(targets[0]!.consistency, undefined, 'the target sent nothing');
  });

  it('a snapshot name already taken stops the run before any target is asked', async () => {
    const host = new VmHost([{ name: 'daily-new' }]);
    const target = new FakeTarget('bk1', host);
    const result = await backupVm(UUID, settings, { local: host, targets: [target], log: silentLog, now });
    assert.match(result.errors.join('\n'), /daily-new already exists; choose another --name/);
    assert.equal(target.run, undefined);
    assert.deepEqual(host.commands, []);
  });
});
