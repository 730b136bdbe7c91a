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
  /** A ZFS from before native encryption: no `encryption` properties. */
  withoutEncryption = false;
  /** `encryption` and `encryptionroot` of encrypted datasets. */
  encryption: Record<string, [string, string]> = {};

  constructor(private readonly datasets: Record<string, Array<{ name: string; txg: number }>>) {}

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    this.commands.push(argv);
    assert.deepEqual(argv.slice(0, 3), ['zfs', 'list', '-Hp']);
    const types = argv[argv.indexOf('-t') + 1]!.split(',');
    const recursive = argv.includes('-r');
    const fields = argv[argv.indexOf('-o') + 1]!.split(',');
    const names = argv.slice(argv.indexOf('-o') + 2);
    const row = (values: Record<string, string>) => fields.map((f) => values[f] ?? '-').join('\t');
    const lines: string[] = [];
    const errors: string[] = [];
    if (this.withoutEncryption && fields.includes('encryption'))
      return this.exit(argv, options, 2, '', "bad property list: invalid property 'encryption'\nusage:");
    for (const name of names) {
      if (!(name in this.datasets)) {
        errors.push(`cannot open '${name}': dataset does not exist`);
        continue;
      }
      const within = recursive
        ? Object.keys(this.datasets).filter((d) => d === name || d.startsWith(`${name}/`))
        : [name];
      for (const dataset of within) {
        const [encryption, encryptionroot] = this.encryption[dataset] ?? ['off', '-'];
        if (types.includes('filesystem'))
          lines.push(
            row({
              name: dataset,
              type: 'filesystem',
              guid: `g-${dataset}`,
              createtxg: '1',
              encryption,
              encryptionroot,
            }),
          );
        if (types.includes('snapshot') && (recursive || argv.includes('-d'))) {
          for (const s of this.datasets[dataset]!)
            lines.push(
              row({
                name: `${dataset}@${s.name}`,
                type: 'snapshot',
                guid: `g-${dataset}@${s.name}`,
                createtxg: String(s.txg),
                userrefs: '0',
              }),
            );
        }
      }
    }
    if (this.failWith) errors.push(this.failWith);
    return this.exit(argv, options, errors.length > 0 ? 1 : 0, lines.join('\n'), errors.join('\n'));
  }

  private exit(argv: Argv, options: RunOptions, exitCode: number, stdout: string, stderr: string): CommandResult {
    const result = { host: this.label, command: argv.join(' '), stdout, stderr, exitCode };
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

describe('listing encryption', () => {
  it('says which datasets are encrypted and under whose key', async () => {
    const host = pool();
    host.encryption[`${B}/data`] = ['aes-256-gcm', `${B}/data`];
    const listed = await listDatasets(host, [B], { recursive: true });
    assert.deepEqual(
      [B, `${B}/data`].map((name) => [listed.get(name)!.encrypted, listed.get(name)!.encryptionRoot]),
      [
        [false, undefined],
        [true, `${B}/data`],
      ],
    );
  });

  it('lists a ZFS without encryption again without it, and from then on at once', async () => {
    const host = pool();
    host.withoutEncryption = true;
    const listed = await listDatasets(host, [B], { withoutSnapshots: ['backup/zones'] });
    assert.deepEqual(
      listed.get(B)!.snapshots.map((s) => s.name),
      ['d-1', 'd-2'],
    );
    assert.equal(listed.get(B)!.encrypted, undefined, 'unknown, not "off"');
    const tries = host.commands.length;
    await listDatasets(host, [B], { recursive: true });
    assert.equal(host.commands.length, tries + 1);
    host.failWith = 'usage: zfs list';
    await assert.rejects(listDatasets(host, [B]), CommandError, 'any other error still throws');
  });
});
