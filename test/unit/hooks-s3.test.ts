import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { s3Schema } from '../../src/config/schema.js';
import { dryRunResult, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import { backupVm } from '../../src/backup/backup-vm.js';
import { ObjectTarget } from '../../src/s3/backup.js';
import { DryRunStore } from '../../src/s3/dry-run-store.js';
import { FakeObjectStore } from './fake-object-store.js';

const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';

/** A SmartOS host under --dry-run with one running OS zone: reads are answered, changes printed. */
class DryRunZoneHost implements Host {
  readonly label = 'local';
  readonly dryRun = true;
  readonly stats = new HostStats();
  readonly printed: string[] = [];
  constructor(private readonly metadata: Record<string, string>) {}
  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    const skipped = dryRunResult(this, argv, options);
    if (skipped) return skipped;
    const answer = (stdout: string) => ({ host: this.label, command: argv.join(' '), stdout, stderr: '', exitCode: 0 });
    if (argv[0] === 'vmadm')
      return answer(
        JSON.stringify({
          uuid: UUID,
          alias: 'db01',
          brand: 'joyent',
          zfs_filesystem: `zones/${UUID}`,
          state: 'running',
          internal_metadata: this.metadata,
        }),
      );
    if (argv[0] === 'zfs' && argv[1] === 'list')
      return answer(
        `zones/${UUID}\tfilesystem\t111\t5\t1700000000\t-\t-\t0\t0\toff\ton\toff\t-\t0\t1000\t100000000\t0\t0\n`,
      );
    return answer('');
  }
  spawn(): never {
    throw new Error('not used in a dry run');
  }
  skipped(description: string): void {
    this.printed.push(description);
  }
  async close(): Promise<void> {}
}

describe('hooks with the object-storage target', () => {
  it("runs the hooks around the run's snapshot: --dry-run prints pre, snapshot, post in that order", async () => {
    const local = new DryRunZoneHost({ zonecopy_pre_snapshot: 'pause-db', zonecopy_post_snapshot: 'resume-db' });
    const s3 = s3Schema.parse({ bucket: 'zone-backups' });
    // as the CLI opens it under --dry-run: the bucket is read, nothing is written there
    const store = new DryRunStore(new FakeObjectStore(), (line) => local.printed.push(line));
    const target = new ObjectTarget('s3', { local, store, s3, log: silentLog });
    const result = await backupVm(
      UUID,
      { group: 'daily', name: 'x', hooks: { global: { post: 'notify' } } },
      { local, targets: [target], log: silentLog, now: () => new Date() },
    );
    assert.deepEqual(result.errors, []);
    const hooksAndSnapshot = local.printed
      .filter((line) => /^(zlogin|zfs snapshot|env )/.test(line))
      .map((line) => line.split(' ').slice(0, 3).join(' '));
    assert.deepEqual(hooksAndSnapshot, [
      `zlogin ${UUID} pause-db`,
      `zfs snapshot zones/${UUID}@daily-x`,
      `zlogin ${UUID} resume-db`,
      `env ZONECOPY_VM_UUID=${UUID} ZONECOPY_VM_ALIAS=db01`,
    ]);
    assert.deepEqual(
      result.consistency?.hooks.map((h) => `${h.phase} ${h.kind}`),
      ['pre zone', 'post zone', 'post global'],
    );
  });

  it('refuses in-zone metadata it cannot run, before anything is snapshotted', async () => {
    const local = new DryRunZoneHost({ zonecopy_pre_snapshot: '' });
    const target = new ObjectTarget('s3', {
      local,
      store: new FakeObjectStore(),
      s3: s3Schema.parse({ bucket: 'zone-backups' }),
      log: silentLog,
    });
    const result = await backupVm(
      UUID,
      { group: 'daily', name: 'x' },
      { local, targets: [target], log: silentLog, now: () => new Date() },
    );
    assert.equal(result.status, 'failed');
    assert.match(result.errors.join(), /internal_metadata zonecopy_pre_snapshot must be a command line/);
    assert.equal(local.printed.filter((line) => line.startsWith('zfs snapshot')).length, 0);
  });
});
