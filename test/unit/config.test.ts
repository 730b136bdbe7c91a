import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyOverrides, ConfigError, loadConfig } from '../../src/config/load.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-config-');

function file(content: unknown): string {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}
const minimal = { backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' };
const fails = (content: unknown, pattern: RegExp) => assert.throws(() => loadConfig(file(content)), (e: Error) => e instanceof ConfigError && pattern.test(e.message));

describe('configuration', () => {
  it('applies documented defaults', () => {
    const c = loadConfig(file(minimal));
    assert.equal(c.transferStrategy, 'ssh');
    assert.equal(c.snapshotIdentifier, 'smartcopy');
    assert.equal(c.backupDestinationUsername, 'root');
    assert.equal(c.backupDestinationPort, 22);
    assert.deepEqual([c.compressionCmd, c.decompressionCmd], [['gzip'], ['gunzip']]);
    assert.equal(c.disableHostKeyChecking, false);
    assert.equal(c.localSnapshotLimit, undefined);
    assert.deepEqual(c.notifiers, []);
  });

  it('accepts every key of configuration.json.example, and smartcopy number strings', () => {
    const c = loadConfig('configuration.json.example');
    assert.equal(c.remoteSnapshotLimit, 14);
    assert.equal(loadConfig(file({ ...minimal, localSnapshotLimit: '3' })).localSnapshotLimit, 3);
    assert.deepEqual(loadConfig(file({ ...minimal, compressionCmd: 'zstd -1 -T0', decompressionCmd: 'zstd -d' })).compressionCmd, ['zstd', '-1', '-T0']);
  });

  it('names unknown keys with a suggestion, wrong types and missing required keys', () => {
    fails({ ...minimal, backupDestinaton: 'x' }, /unknown key "backupDestinaton" \(did you mean "backupDestination"\?\)/);
    fails({ ...minimal, localSnapshotLimit: 'many' }, /"localSnapshotLimit": expected a whole number/);
    fails({ backupDestinationBasePath: 'backup/zones' }, /"backupDestination": required for the SSH backup host/);
    fails({ ...minimal, backupDestinationBasePath: '/backup/zones' }, /backupDestinationBasePath/);
    fails({ ...minimal, transferStrategy: 'ftp' }, /transferStrategy/);
    fails({ ...minimal, compressionCmd: ['zstd'] }, /set decompressionCmd too/);
    fails({ ...minimal, smtpHostname: 'mail' }, /smtpFromAddress/);
    fails({ ...minimal, notificationOrder: 'email,http' }, /unknown notifier "http"/);
  });

  it('the object-storage target needs its s3 section, and the SSH keys only when SSH is the target', () => {
    const s3 = { backupTarget: 's3', s3: { bucket: 'zone-backups', endpoint: 'http://127.0.0.1:4568' } };
    const c = loadConfig(file(s3));
    assert.deepEqual([c.s3!.prefix, c.s3!.compression, c.s3!.partConcurrency, c.s3!.region], ['zonecopy', 'zstd', 4, 'us-east-1']);
    assert.equal(c.sshBulkTransport, 'openssh');
    fails({ backupTarget: 's3' }, /"s3": required when backupTarget is "s3"/);
    fails({ ...s3, s3: { bucket: 'Bad_Bucket' } }, /"s3.bucket": an S3 bucket name/);
    fails({ ...s3, s3: { bucket: 'zone-backups', prefix: '/x/' } }, /"s3.prefix"/);
    fails({ ...s3, s3: { bucket: 'zone-backups', endpoint: 'not a url' } }, /"s3.endpoint"/);
    fails({ ...s3, s3: { bucket: 'zone-backups', compresion: 'zstd' } }, /unknown key "s3\.compresion" \(did you mean "s3\.compression"\?\)/);
    fails({ ...minimal, sshBulkTransport: 'scp' }, /sshBulkTransport/);
  });

  it('names a nested key by its full dotted path, with a suggestion from its own section (issue 16, item 7e)', () => {
    const s3 = { backupTarget: 's3', s3: { bucket: 'zone-backups' } };
    fails({ ...s3, s3: { buckett: 'zone-backups' } }, /unknown key "s3\.buckett" \(did you mean "s3\.bucket"\?\)/);
    fails({ ...s3, s3: { bucket: 'zone-backups', partConcurency: 2 } }, /unknown key "s3\.partConcurency" \(did you mean "s3\.partConcurrency"\?\)/);
    fails({ ...s3, s3: { bucket: 'zone-backups', wholly: 1 } }, /unknown key "s3\.wholly"; see/);
    fails({ ...s3, s3: { bucket: 'zone-backups', partConcurrency: 'many' } }, /"s3\.partConcurrency": expected a whole number/);
    fails({ ...minimal, compressionCmd: ['zstd', ''], decompressionCmd: 'zstd -d' }, /"compressionCmd\.1"/);
  });

  it('says where invalid JSON is and how to start when the file is missing', () => {
    fails('{\n  "backupDestination": "x",\n}', /not valid JSON.*line 3/s);
    assert.throws(() => loadConfig('/nonexistent/configuration.json'), /Copy configuration.json.example/);
  });

  it('validates command-line overrides under their flag names', () => {
    const c = loadConfig(file(minimal));
    assert.equal(applyOverrides(c, { remoteSnapshotLimit: '5' }).remoteSnapshotLimit, 5);
    assert.throws(() => applyOverrides(c, { localSnapshotLimit: 'x' }, { localSnapshotLimit: '--localSnapLimit' }), /--localSnapLimit \(localSnapshotLimit\)/);
  });
});
