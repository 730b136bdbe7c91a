import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupVm } from '../../src/backup/backup-vm.js';
import { s3Schema } from '../../src/config/schema.js';
import { silentLog } from '../../src/log.js';
import { ObjectTarget } from '../../src/s3/backup.js';
import { DryRunStore } from '../../src/s3/dry-run-store.js';
import { streamKey, streamMetadata, type StoredStream } from '../../src/s3/keys.js';
import { FakeObjectStore, rootListing, rootStream } from './fake-object-store.js';
import { ScriptedHost } from './scripted-host.js';
import { scratchDirectory } from './scratch.js';

const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const ROOT = `zones/${UUID}`;
const journals = scratchDirectory('zc-dry-journal-');

const listing = () => rootListing(ROOT, ['daily-1', 'daily-2', 'daily-3']);
/** A stream already in the bucket: daily-1 and daily-3 are full streams, so daily-1 and daily-2 can go. */
const stored = (snapshot: string, guid: string, parent?: StoredStream['parent']) =>
  rootStream(UUID, snapshot, guid, parent);

describe('--dry-run to object storage', () => {
  it('reads the bucket, prints the upload pipeline and the deletions, and writes nothing there', async () => {
    const bucket = new FakeObjectStore();
    for (const s of [
      stored('daily-1', 'g1'),
      stored('daily-2', 'g2', { dataset: ROOT, snapshot: 'daily-1', guid: 'g1' }),
      stored('daily-3', 'g3'),
    ])
      bucket.objects.set(s.key, { body: Buffer.from('x'), metadata: streamMetadata(s) });
    const before = new Map(bucket.objects);
    const local = new ScriptedHost((argv) => {
      if (argv[0] === 'vmadm')
        return {
          stdout: JSON.stringify({ uuid: UUID, brand: 'joyent', zfs_filesystem: ROOT, state: 'stopped' }),
        };
      if (argv[0] === 'zfs' && argv[1] === 'list') return { stdout: listing() };
      if (argv[0] === 'imgadm' || argv[0] === 'zonecfg') return { exitCode: 1 };
      return undefined;
    }, true);
    const printed: string[] = [];
    const store = new DryRunStore(bucket, (line) => printed.push(line));
    const s3 = s3Schema.parse({ bucket: 'zone-backups', stateDirectory: journals() });
    const target = new ObjectTarget('s3', { local, store, s3, log: silentLog }, { remoteRetention: { count: 2 } });
    const result = await backupVm(
      UUID,
      { group: 'daily', name: 'new' },
      { local, targets: [target], log: silentLog, now: () => new Date() },
    );

    assert.deepEqual(result.errors, []);
    assert.deepEqual([...bucket.objects.keys()], [...before.keys()], 'no object added or deleted');
    assert.equal(bucket.uploads.size, 0, 'no multipart upload started');
    assert.equal(
      local.commands.filter((argv) => argv.join(' ').startsWith('zfs send')).length,
      0,
      'no send ran, not even its estimate',
    );
    const upload = local.skippedLines.find((line) => line.startsWith('zfs send'));
    assert.equal(
      upload,
      `zfs send -i ${ROOT}@daily-3 ${ROOT}@daily-new | zstd -q -c > s3://zone-backups/${streamKey('zonecopy', UUID, ROOT, 'daily-new')}`,
    );
    const deletion = `[dry-run] ${bucket.label}: delete 2 object(s): ${stored('daily-1', 'g1').key} ${stored('daily-2', 'g2').key}`;
    assert.ok(printed.includes(deletion), printed.join('\n'));
    assert.ok(
      printed.some((line) => line.startsWith(`[dry-run] ${bucket.label}: put zonecopy/${UUID}/@sets/daily-new.json`)),
      'the set manifest is printed, not stored',
    );
  });
});
