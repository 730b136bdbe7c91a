import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPrograms, missingPrograms, programsNeeded } from '../../src/backup/programs.js';
import { configSchema } from '../../src/config/schema.js';
import { LocalHost } from '../../src/host/local.js';

const config = (extra: Record<string, unknown>) =>
  configSchema.parse({ backupDestination: 'b', backupDestinationBasePath: 'backup/zones', ...extra });
const names = (list: Array<{ program: string }>) => list.map((p) => p.program);

describe('programs a run needs', () => {
  it('names what each strategy and target start on each side', () => {
    assert.deepEqual(programsNeeded(config({}), 'ssh'), {
      local: [{ program: 'zfs' }, { program: 'ssh', setting: 'sshBulkTransport' }],
      remote: [{ program: 'zfs' }],
    });
    const mbuffer = programsNeeded(
      config({
        transferStrategy: 'mbuffer_gzip',
        mBufferLocalPath: '/opt/local/bin/mbuffer',
        compressionCmd: ['zstd', '-1'],
        decompressionCmd: ['zstd', '-d'],
      }),
      'ssh',
    );
    assert.deepEqual(
      [names(mbuffer.local), names(mbuffer.remote)],
      [
        ['zfs', 'zstd', '/opt/local/bin/mbuffer'],
        ['zfs', 'zstd', 'mbuffer'],
      ],
    );
    const s3 = programsNeeded(
      config({ backupTarget: 's3', s3: { bucket: 'zc-backups', gpgRecipient: 'ops@example.com' } }),
      's3',
    );
    assert.deepEqual([names(s3.local), s3.remote], [['zfs', 'zstd', 'gpg'], []]);
  });

  it('finds what sh would find, and says what is missing, where, with the PATH searched and how to get it', async () => {
    const host = new LocalHost(false);
    const found = await missingPrograms(host, [
      { program: 'sh' },
      { program: '/bin/sh' },
      { program: 'zc-no-such-program' },
      { program: '/nonexistent/mbuffer', setting: 'mBufferLocalPath' },
    ]);
    assert.deepEqual(names(found.missing), ['zc-no-such-program', '/nonexistent/mbuffer']);
    assert.equal(found.path, process.env.PATH);
    const message = await checkPrograms(
      { local: [{ program: 'mbuffer-zc-missing', setting: 'mBufferLocalPath' }], remote: [] },
      host,
      undefined,
    );
    assert.match(
      message!,
      /mbuffer-zc-missing is not found on this host \(PATH=.*\): install mbuffer-zc-missing, or name its full path in mBufferLocalPath\. Nothing was snapshotted\./,
    );
    assert.equal(await checkPrograms({ local: [{ program: 'sh' }], remote: [] }, host, undefined), undefined);
  });

  it('a hostile program name is only ever an argument', async () => {
    const found = await missingPrograms(new LocalHost(false), [
      { program: '$(touch /tmp/zc-pwned)' },
      { program: 'a;b' },
    ]);
    assert.deepEqual(names(found.missing), ['$(touch /tmp/zc-pwned)', 'a;b']);
  });
});
