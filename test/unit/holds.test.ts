import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandError, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import {
  holdCommands,
  holdsArgvs,
  ILLUMOS_HOLDS_BATCH,
  ILLUMOS_HOLDS_SIDE_BY_SIDE,
  parseHolds,
  snapshotsHeldBy,
} from '../../src/zfs/holds.js';
import type { DatasetState } from '../../src/zfs/list.js';

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
    assert.deepEqual(holdCommands('hold', 't', snapshots, [`${VM}/data/b`]), [
      ['zfs', 'hold', 't', `${VM}@d-2`, `${VM}/data/a@d-2`],
    ]);
    // a kept dataset elsewhere does not matter
    assert.deepEqual(holdCommands('hold', 't', snapshots, [`${VM}-disk0`]), [['zfs', 'hold', '-r', 't', `${VM}@d-2`]]);
  });

  it('only snapshots of the same name collapse; a lone dataset is named as it is', () => {
    const snapshots = [`${VM}@d-1`, `${VM}/data@d-2`];
    assert.deepEqual(holdCommands('release', 't', snapshots, []), [
      ['zfs', 'release', 't', `${VM}@d-1`, `${VM}/data@d-2`],
    ]);
    assert.deepEqual(holdCommands('hold', 't', [`${VM}@d-2`], []), [['zfs', 'hold', 't', `${VM}@d-2`]]);
  });

  it('a middle dataset whose parent is not listed heads its own -r (zones is not under zones2)', () => {
    const snapshots = [`${VM}/data@d-2`, `${VM}/data/a@d-2`, `zones2/x@d-2`, `zones2/x/y@d-2`];
    assert.deepEqual(holdCommands('hold', 't', snapshots, []), [
      ['zfs', 'hold', '-r', 't', `${VM}/data@d-2`, 'zones2/x@d-2'],
    ]);
  });
});

/**
 * `zfs holds -H` as each platform answers it. illumos (zfs_main.c zfs_do_holds) runs zfs_for_each
 * over all arguments once per argument, so a call with N names opens N² datasets; it prints
 * `no datasets available` on stdout when nothing is held, and exits 1 after a `cannot open` error.
 */
class HoldsHost implements Host {
  readonly label = 'holds-host';
  readonly dryRun = false;
  readonly stats = new HostStats();
  readonly calls: Argv[] = [];
  opens = 0;
  running = 0;
  peak = 0;

  constructor(
    private readonly kernel: 'SunOS' | 'Linux',
    private readonly holds: Record<string, string[]>,
  ) {}

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    this.calls.push(argv);
    const result = { host: this.label, command: argv.join(' '), stdout: '', stderr: '', exitCode: 0 };
    if (argv.join(' ') === 'uname -s') return { ...result, stdout: `${this.kernel}\n` };
    assert.deepEqual(argv.slice(0, 3), ['zfs', 'holds', '-H']);
    const names = argv.slice(3);
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    await new Promise((r) => setTimeout(r, 5));
    this.running--;
    this.opens += this.kernel === 'SunOS' ? names.length * names.length : names.length;
    const lines = names.flatMap((n) => (this.holds[n] ?? []).map((tag) => `${n}\t${tag}\tMon Nov 30 04:00 2026`));
    const missing = names.filter((n) => !(n in this.holds)).map((n) => `cannot open '${n}': dataset does not exist`);
    const answer = {
      ...result,
      stdout: lines.length > 0 ? `${lines.join('\n')}\n` : this.kernel === 'SunOS' ? 'no datasets available\n' : '',
      stderr: missing.join('\n') + (lines.length === 0 && this.kernel === 'Linux' ? 'no datasets available\n' : ''),
      exitCode: missing.length > 0 ? 1 : 0,
    };
    if (answer.exitCode !== 0 && !options.allowExitCodes?.includes(answer.exitCode)) throw new CommandError(answer);
    return answer;
  }

  spawn(): never {
    throw new Error('not used');
  }
  skipped(): void {}
  async close(): Promise<void> {}
}

const TAG = 'zonecopy:b:daily';
/** 40 datasets with one held snapshot each: every other one held by our tag. */
const HELD = Array.from({ length: 40 }, (_, i) => `${VM}/d${i}@daily-1`);
const states = (names: readonly string[]): DatasetState[] =>
  names.map((full) => {
    const [name, snapshot] = full.split('@') as [string, string];
    return {
      name,
      type: 'filesystem',
      guid: `g-${name}`,
      snapshots: [{ name: snapshot, guid: 'g', createtxg: 1, creation: 1, userrefs: 1 }],
    };
  });

describe('zfs holds on illumos and on OpenZFS', () => {
  it('on illumos asks in batches of a few names, a few side by side, and learns the kernel once', async () => {
    const host = new HoldsHost('SunOS', Object.fromEntries(HELD.map((s, i) => [s, i % 2 === 0 ? [TAG] : ['other']])));
    const held = await snapshotsHeldBy(host, TAG, states(HELD));
    assert.deepEqual([...held].sort(), HELD.filter((_, i) => i % 2 === 0).sort());
    const holds = host.calls.filter((c) => c[1] === 'holds');
    assert.ok(
      holds.every((c) => c.length - 3 <= ILLUMOS_HOLDS_BATCH),
      'no call names more than a batch',
    );
    assert.equal(holds.flatMap((c) => c.slice(3)).length, HELD.length, 'each snapshot asked about once');
    assert.ok(
      host.peak > 1 && host.peak <= ILLUMOS_HOLDS_SIDE_BY_SIDE,
      `side by side, within bounds (peak ${host.peak})`,
    );
    assert.ok(
      host.opens <= HELD.length * ILLUMOS_HOLDS_BATCH,
      `linear in the names, not quadratic (${host.opens} opens)`,
    );
    await snapshotsHeldBy(host, TAG, states(HELD.slice(0, 3)));
    assert.equal(host.calls.filter((c) => c[0] === 'uname').length, 1, 'uname once per host');
  });

  it('on OpenZFS keeps one or two calls with every name (no per-argument cost there)', async () => {
    const host = new HoldsHost('Linux', Object.fromEntries(HELD.map((s) => [s, [TAG]])));
    const held = await snapshotsHeldBy(host, TAG, states(HELD));
    assert.equal(held.size, HELD.length);
    assert.deepEqual(
      host.calls.filter((c) => c[1] === 'holds').map((c) => c.length - 3),
      [20, 20],
    );
  });

  it('the batching decision and argv', () => {
    const names = Array.from({ length: 17 }, (_, i) => `z/d${i}@s`);
    assert.deepEqual(
      holdsArgvs(names, 'SunOS').map((argv) => argv.length - 3),
      [8, 8, 1],
    );
    assert.deepEqual(holdsArgvs(names, 'SunOS')[2], ['zfs', 'holds', '-H', 'z/d16@s']);
    assert.deepEqual(holdsArgvs(names, 'Linux'), [['zfs', 'holds', '-H', ...names]]);
    assert.deepEqual(holdsArgvs(names, 'FreeBSD'), [['zfs', 'holds', '-H', ...names]], 'only illumos is batched');
    assert.deepEqual(holdsArgvs([], 'SunOS'), []);
  });

  it("illumos's `no datasets available` on stdout is no hold, with exit 0 or with exit 1 for a snapshot gone since the listing", async () => {
    const none = new HoldsHost('SunOS', { [`${VM}@daily-1`]: [] });
    assert.equal((await snapshotsHeldBy(none, TAG, states([`${VM}@daily-1`]))).size, 0);
    const gone = new HoldsHost('SunOS', { [`${VM}@daily-1`]: [TAG] });
    const held = await snapshotsHeldBy(gone, TAG, states([`${VM}@daily-1`, `${VM}/gone@daily-1`]));
    assert.deepEqual([...held], [`${VM}@daily-1`]);
  });

  it('a zfs holds failure other than a missing snapshot is an error', async () => {
    const host = new HoldsHost('SunOS', {});
    host.run = async (argv, options) => {
      if (argv[0] === 'uname') return { host: 'h', command: 'uname -s', stdout: 'SunOS\n', stderr: '', exitCode: 0 };
      const result = {
        host: 'h',
        command: argv.join(' '),
        stdout: '',
        stderr: 'internal error: out of memory',
        exitCode: 1,
      };
      if (options.allowExitCodes?.includes(1)) return result;
      throw new CommandError(result);
    };
    await assert.rejects(snapshotsHeldBy(host, TAG, states([`${VM}@daily-1`])), /out of memory/);
  });

  it('parses recorded illumos output (tab-separated, a date with spaces, the no-datasets line)', () => {
    const recorded = [
      `${VM}@daily-2026-11-29\tzonecopy:b:daily\tSun Nov 29 02:00 2026`,
      `${VM}@daily-2026-11-29\t.send-4242-0\tSun Nov 29 02:00 2026`,
      `${VM}/data@daily-2026-11-29\tsomeone-else\tSun Nov 29 02:01 2026`,
      'no datasets available',
      '',
    ].join('\n');
    assert.deepEqual([...parseHolds(recorded, 'zonecopy:b:daily')], [`${VM}@daily-2026-11-29`]);
  });
});
