import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandError, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { listDatasets } from '../../src/zfs/list.js';

/** A pool in memory, answering `zfs list` the way the real one does for the forms zonecopy uses. */
class FakePool implements Host {
  readonly label = 'fake';
  readonly dryRun = false;
  readonly stats = new HostStats();
  readonly commands: Argv[] = [];
  failWith?: string;

  constructor(private readonly datasets: Record<string, Array<{ name: string; txg: number }>>) {}

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    this.commands.push(argv);
    assert.deepEqual(argv.slice(0, 3), ['zfs', 'list', '-Hp']);
    const types = argv[argv.indexOf('-t') + 1]!.split(',');
    const recursive = argv.includes('-r');
    const names = argv.slice(argv.indexOf('-o') + 2);
    const lines: string[] = [];
    const errors: string[] = [];
    for (const name of names) {
      if (!(name in this.datasets)) {
        errors.push(`cannot open '${name}': dataset does not exist`);
        continue;
      }
      const within = recursive
        ? Object.keys(this.datasets).filter((d) => d === name || d.startsWith(`${name}/`))
        : [name];
      for (const dataset of within) {
        if (types.includes('filesystem'))
          lines.push([dataset, 'filesystem', `g-${dataset}`, '1', '1', '-', '-', '-'].join('\t'));
        if (types.includes('snapshot') && (recursive || argv.includes('-d'))) {
          for (const s of this.datasets[dataset]!)
            lines.push(
              [`${dataset}@${s.name}`, 'snapshot', `g-${dataset}@${s.name}`, String(s.txg), '1', '-', '-', '0'].join(
                '\t',
              ),
            );
        }
      }
    }
    if (this.failWith) errors.push(this.failWith);
    const exitCode = errors.length > 0 ? 1 : 0;
    const result = {
      host: this.label,
      command: argv.join(' '),
      stdout: lines.join('\n'),
      stderr: errors.join('\n'),
      exitCode,
    };
    if (exitCode !== 0 && !options.allowExitCodes?.includes(exitCode)) throw new CommandError(result);
    return result;
  }

  spawn(): never {
    throw new Error('not used');
  }
  skipped(): void {}
  async close(): Promise<void> {}
}

const B = 'backup/zones/vm';
const children = Array.from({ length: 60 }, (_, i) => `${B}/data/c${i}`);
const pool = () =>
  new FakePool({
    backup: [],
    'backup/zones': [],
    [B]: [
      { name: 'd-2', txg: 20 },
      { name: 'd-1', txg: 10 },
    ],
    [`${B}/data`]: [{ name: 'd-1', txg: 11 }],
    ...Object.fromEntries(children.map((c) => [c, [{ name: 'd-1', txg: 12 }]])),
  });

describe('listing datasets without recursion', () => {
  it('gives each target its own snapshots, oldest first, once, and parents only as datasets', async () => {
    const host = pool();
    const targets = [B, `${B}/data`, ...children];
    const listed = await listDatasets(host, targets, { withoutSnapshots: ['backup/zones', `${B}/data`] });
    assert.deepEqual([...listed.keys()].sort(), ['backup/zones', ...targets].sort());
    assert.deepEqual(
      listed.get(B)!.snapshots.map((s) => s.name),
      ['d-1', 'd-2'],
    );
    assert.deepEqual(
      listed.get(`${B}/data`)!.snapshots.map((s) => s.name),
      ['d-1'],
      'a target that is also a parent keeps its snapshots',
    );
    assert.deepEqual(listed.get('backup/zones')!.snapshots, []);
    // every target's snapshots are asked for exactly once, over two commands side by side
    const snapshotCommands = host.commands.filter((argv) => argv.includes('snapshot'));
    assert.equal(snapshotCommands.length, 2);
    const asked = snapshotCommands.flatMap((argv) => argv.slice(argv.indexOf('-o') + 2));
    assert.deepEqual(asked.sort(), [...targets].sort());
    assert.ok(!asked.includes('backup/zones'));
  });

  it('leaves out what does not exist and throws on any other error', async () => {
    const host = pool();
    const listed = await listDatasets(host, [`${B}-disk0`, B], { withoutSnapshots: ['backup/none'] });
    assert.deepEqual([...listed.keys()], [B]);
    assert.equal(host.commands.length, 2, 'one listing of the datasets, one of the snapshots of a few');
    host.failWith = "cannot open 'backup': permission denied";
    await assert.rejects(listDatasets(host, [B]), CommandError);
  });

  it('recursion lists descendants nobody named', async () => {
    const host = pool();
    const listed = await listDatasets(host, [B], { recursive: true });
    assert.equal(listed.size, 62);
    assert.equal(host.commands.length, 1);
  });
});
