import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyOverrides, ConfigError, loadConfig } from '../../src/config/load.js';
import type { Platform } from '../../src/config/platform.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-config-');

function file(content: unknown): string {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}
const minimal = { backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' };
const fails = (content: unknown, pattern: RegExp) =>
  assert.throws(
    () => loadConfig(file(content)),
    (e: Error) => e instanceof ConfigError && pattern.test(e.message),
  );

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
    assert.deepEqual([c.localRetention, c.remoteRetention, c.staleAfter], ['3,1d1w', '10,1d1w,1w1m,1m1y', '2d']);
    assert.equal(loadConfig(file({ ...minimal, localSnapshotLimit: '3' })).localSnapshotLimit, 3);
    assert.deepEqual(
      loadConfig(file({ ...minimal, compressionCmd: 'zstd -1 -T0', decompressionCmd: 'zstd -d' })).compressionCmd,
      ['zstd', '-1', '-T0'],
    );
  });

  it('names unknown keys with a suggestion, wrong types and missing required keys', () => {
    fails(
      { ...minimal, backupDestinaton: 'x' },
      /unknown key "backupDestinaton" \(did you mean "backupDestination"\?\)/,
    );
    fails({ ...minimal, localSnapshotLimit: 'many' }, /"localSnapshotLimit": expected a whole number/);
    fails({ backupDestinationBasePath: 'backup/zones' }, /"backupDestination": required for the SSH backup host/);
    fails({ ...minimal, backupDestinationBasePath: '/backup/zones' }, /backupDestinationBasePath/);
    fails({ ...minimal, transferStrategy: 'ftp' }, /transferStrategy/);
    fails(
      { ...minimal, remoteRetention: '1d,1w1m' },
      /"remoteRetention": retention schedule "1d,1w1m": "1d" is neither.*10,1d1w,1w1m,1m1y/,
    );
    fails({ ...minimal, localRetention: '1w1d' }, /"localRetention": .*"1w1d" keeps one per 1w for less than that/);
    fails({ ...minimal, compressionCmd: ['zstd'] }, /set decompressionCmd too/);
    fails({ ...minimal, smtpHostname: 'mail' }, /smtpFromAddress/);
    fails({ ...minimal, notificationOrder: 'email,http' }, /unknown notifier "http"/);
  });

  it('the object-storage target needs its s3 section, and the SSH keys only when SSH is the target', () => {
    const s3 = { backupTarget: 's3', s3: { bucket: 'zone-backups', endpoint: 'http://127.0.0.1:4568' } };
    const c = loadConfig(file(s3));
    assert.deepEqual(
      [c.s3!.prefix, c.s3!.compression, c.s3!.partConcurrency, c.s3!.region],
      ['zonecopy', 'zstd', 4, 'us-east-1'],
    );
    assert.equal(c.sshBulkTransport, 'openssh');
    fails({ backupTarget: 's3' }, /"s3": required when backupTarget is "s3"/);
    fails({ ...s3, s3: { bucket: 'Bad_Bucket' } }, /"s3.bucket": an S3 bucket name/);
    fails({ ...s3, s3: { bucket: 'zone-backups', prefix: '/x/' } }, /"s3.prefix"/);
    fails({ ...s3, s3: { bucket: 'zone-backups', endpoint: 'not a url' } }, /"s3.endpoint"/);
    fails(
      { ...s3, s3: { bucket: 'zone-backups', compresion: 'zstd' } },
      /unknown key "s3\.compresion" \(did you mean "s3\.compression"\?\)/,
    );
    fails({ ...minimal, sshBulkTransport: 'scp' }, /sshBulkTransport/);
  });

  it('names a nested key by its full dotted path, with a suggestion from its own section (issue 16, item 7e)', () => {
    const s3 = { backupTarget: 's3', s3: { bucket: 'zone-backups' } };
    fails({ ...s3, s3: { buckett: 'zone-backups' } }, /unknown key "s3\.buckett" \(did you mean "s3\.bucket"\?\)/);
    fails(
      { ...s3, s3: { bucket: 'zone-backups', partConcurency: 2 } },
      /unknown key "s3\.partConcurency" \(did you mean "s3\.partConcurrency"\?\)/,
    );
    fails({ ...s3, s3: { bucket: 'zone-backups', wholly: 1 } }, /unknown key "s3\.wholly"; see/);
    fails(
      { ...s3, s3: { bucket: 'zone-backups', partConcurrency: 'many' } },
      /"s3\.partConcurrency": expected a whole number/,
    );
    fails({ ...minimal, compressionCmd: ['zstd', ''], decompressionCmd: 'zstd -d' }, /"compressionCmd\.1"/);
  });

  it('says where invalid JSON is and how to start when the file is missing', () => {
    fails('{\n  "backupDestination": "x",\n}', /not valid JSON.*line 3/s);
    assert.throws(() => loadConfig('/nonexistent/configuration.json'), /Copy configuration.json.example/);
  });

  it('validates command-line overrides under their flag names', () => {
    const c = loadConfig(file(minimal));
    assert.equal(applyOverrides(c, { remoteSnapshotLimit: '5' }).remoteSnapshotLimit, 5);
    assert.throws(
      () => applyOverrides(c, { localSnapshotLimit: 'x' }, { localSnapshotLimit: '--localSnapLimit' }),
      /--localSnapLimit \(localSnapshotLimit\)/,
    );
  });
});

describe('keys and credentials on a SmartOS global zone, where / (so /root) is a ramdisk (issue 17, §2.1)', () => {
  const smartos: Platform = { sunos: true, installRoot: '/opt/zonecopy', home: '/root' };
  const linux: Platform = { sunos: false, installRoot: '/opt/zonecopy', home: '/home/ops' };
  const load = (content: unknown, platform: Platform) => loadConfig(file(content), platform);
  const s3 = { backupTarget: 's3', s3: { bucket: 'zone-backups' } };

  it('defaults the SSH key, known_hosts, gpg home and AWS files under the installation on SunOS', () => {
    const c = load({ ...minimal, ...s3 }, smartos);
    assert.equal(c.backupDestinationPrivateKeyPath, '/opt/zonecopy/etc/ssh/id_ed25519');
    assert.equal(c.knownHostsPath, '/opt/zonecopy/etc/ssh/known_hosts');
    assert.equal(c.s3?.gpgHome, '/opt/zonecopy/etc/gnupg');
    assert.equal(c.s3?.credentialsFile, '/opt/zonecopy/etc/aws/credentials');
    assert.equal(c.s3?.configFile, '/opt/zonecopy/etc/aws/config');
    assert.equal(c.s3?.gpgPath, 'gpg');
  });

  it('elsewhere keeps the home directory and leaves the key, gpg and AWS SDK to their own defaults', () => {
    const c = load({ ...minimal, ...s3 }, linux);
    assert.equal(c.knownHostsPath, '/home/ops/.ssh/known_hosts');
    assert.equal(c.backupDestinationPrivateKeyPath, undefined);
    assert.equal(c.s3?.gpgHome, undefined);
    assert.equal(c.s3?.credentialsFile, undefined);
    assert.equal(
      load({ ...minimal, knownHostsPath: '/root/.ssh/known_hosts' }, linux).knownHostsPath,
      '/root/.ssh/known_hosts',
    );
  });

  const lost: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'a key under /root',
      { backupDestinationPrivateKeyPath: '/root/.ssh/id_ed25519' },
      /"backupDestinationPrivateKeyPath": \/root\/\.ssh\/id_ed25519 would be gone after a reboot.*move it to \/opt\/zonecopy\/etc\/ssh\/id_ed25519/,
    ],
    [
      'known_hosts under /etc (not /etc/ssh)',
      { knownHostsPath: '/etc/zonecopy/known_hosts' },
      /"knownHostsPath": \/etc\/zonecopy\/known_hosts .*\/etc is on the SmartOS global zone's ramdisk.*\/opt\/zonecopy\/etc\/ssh\/known_hosts/,
    ],
    [
      'a relative key (from /root)',
      { backupDestinationPrivateKeyPath: '.ssh/id_rsa' },
      /"backupDestinationPrivateKeyPath": \.ssh\/id_rsa would be gone/,
    ],
    [
      'a gpg home in /tmp',
      { ...s3, s3: { bucket: 'zone-backups', gpgHome: '/tmp/gnupg' } },
      /"s3\.gpgHome": \/tmp\/gnupg .*move it to \/opt\/zonecopy\/etc\/gnupg/,
    ],
    [
      'AWS credentials in ~/.aws',
      { ...s3, s3: { bucket: 'zone-backups', credentialsFile: '/root/.aws/credentials' } },
      /"s3\.credentialsFile": \/root\/\.aws\/credentials .*\/opt\/zonecopy\/etc\/aws\/credentials/,
    ],
  ];
  for (const [name, keys, message] of lost) {
    it(`refuses ${name} on SunOS, naming the key and the persistent place; accepts it elsewhere`, () => {
      assert.throws(
        () => load({ ...minimal, ...keys }, smartos),
        (e: Error) => e instanceof ConfigError && message.test(e.message),
      );
      load({ ...minimal, ...keys }, linux);
    });
  }

  it('accepts the persistent places: the installation, /var, /usbkey, /etc/ssh', () => {
    for (const path of [
      '/opt/zonecopy/etc/ssh/id_ed25519',
      '/var/zonecopy/id_ed25519',
      '/usbkey/ssh/id_ed25519',
      '/etc/ssh/ssh_host_ed25519_key',
      '/zones/keys/id_ed25519',
    ]) {
      assert.equal(
        load({ ...minimal, backupDestinationPrivateKeyPath: path }, smartos).backupDestinationPrivateKeyPath,
        path,
      );
    }
    assert.throws(
      () => load({ ...minimal, knownHostsPath: '/etc/sshd/known_hosts' }, smartos),
      ConfigError,
      '/etc/sshd is not /etc/ssh',
    );
  });

  it('a command-line override is checked the same way', () => {
    const c = load(minimal, smartos);
    assert.throws(
      () => applyOverrides(c, { knownHostsPath: '/root/known_hosts' }, {}, smartos),
      /"knownHostsPath": \/root\/known_hosts would be gone/,
    );
  });
});
