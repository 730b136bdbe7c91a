/**
 * gpg on a SmartOS global zone: the platform's /usr/bin/gpg is GnuPG 1.4.23, which has no ECC, so a
 * cv25519 recipient (gpg ≥ 2.3's default) is refused before anything is snapshotted; s3.gpgPath
 * names the gpg to use wherever one runs. The gpgs here are scripts that answer as each version does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { LocalHost } from '../../src/host/local.js';
import { checkGpgRecipient, encryptionKeys, parseGpgVersion } from '../../src/s3/gpg.js';
import { decryptArgv, encryptArgv } from '../../src/s3/streams.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-gpg-');
const RECIPIENT = 'ops@example.com';

const GPG_14 =
  'gpg (GnuPG) 1.4.23\nCopyright (C) 2015 Free Software Foundation, Inc.\n\nHome: ~/.gnupg\nSupported algorithms:\nPubkey: RSA, RSA-E, RSA-S, ELG-E, DSA\n';
const GPG_24 =
  'gpg (GnuPG) 2.4.4\nlibgcrypt 1.10.3\n\nHome: /root/.gnupg\nSupported algorithms:\nPubkey: RSA, ELG, DSA, ECDH, ECDSA, EDDSA\n';
/** `gpg --with-colons --list-keys` of a key made by gpg ≥ 2.3's defaults: ed25519 signing, cv25519 encryption. */
const CV25519 = `tru::1:1700000000:0:3:1:5\npub:u:255:22:AAAA1111BBBB2222:1700000000:::u:::scESC:::::ed25519:::0:\nuid:u::::1700000000::0123::${RECIPIENT}::::::::::0:\nsub:u:255:18:CCCC3333DDDD4444:1700000000::::::e:::::cv25519::\n`;
const RSA = `pub:u:3072:1:AAAA1111BBBB2222:1700000000:::u:::scESC::::::23::0:\nuid:u::::1700000000::0123::${RECIPIENT}::::::::::0:\nsub:u:3072:1:CCCC3333DDDD4444:1700000000::::::e::::::23:\n`;
const RSA_REVOKED_SUB = RSA.replace('sub:u:', 'sub:r:');

/** A gpg that prints `version` and, for the recipient, `listing` (exit 2 "not found" otherwise); its arguments go to `calls`. */
function fakeGpg(version: string, listing: string | undefined): { path: string; calls: () => string[] } {
  const dir = scratch();
  const path = join(dir, 'gpg');
  writeFileSync(join(dir, 'version'), version);
  if (listing !== undefined) writeFileSync(join(dir, 'listing'), listing);
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `printf '%s\\n' "$*" >> '${dir}/calls'`,
      `if [ "$1" = --version ]; then cat '${dir}/version'; exit 0; fi`,
      'for last; do :; done',
      `if [ "$last" = '${RECIPIENT}' ] && [ -f '${dir}/listing' ]; then cat '${dir}/listing'; exit 0; fi`,
      'echo "gpg: error reading key: No public key" >&2; exit 2',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return {
    path,
    calls: () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : []),
  };
}

const host = new LocalHost(false, () => undefined);

describe('checkGpgRecipient', () => {
  it('GnuPG 1.4.23 (SmartOS /usr/bin/gpg) with a cv25519 key: refused, naming the version, the key and the fix', async () => {
    const gpg = fakeGpg(GPG_14, CV25519);
    await assert.rejects(checkGpgRecipient(host, { gpgPath: gpg.path }, RECIPIENT), (error: Error) => {
      assert.match(error.message, /GnuPG 1\.4, which cannot encrypt to "ops@example\.com"/);
      assert.match(error.message, /ECDH \(cv25519 or NIST curves\) cv25519/);
      assert.match(error.message, /s3\.gpgPath/);
      assert.match(error.message, /Nothing was snapshotted/);
      return true;
    });
  });

  it('GnuPG 1.4.23 with an RSA key: accepted', async () => {
    await checkGpgRecipient(host, { gpgPath: fakeGpg(GPG_14, RSA).path }, RECIPIENT);
  });

  it('GnuPG 2.4 with a cv25519 key: accepted, and the keyring of gpgHome is the one asked', async () => {
    const gpg = fakeGpg(GPG_24, CV25519);
    await checkGpgRecipient(host, { gpgPath: gpg.path, gpgHome: '/opt/zonecopy/etc/gnupg' }, RECIPIENT);
    assert.match(
      gpg.calls().join('\n'),
      /^--homedir \/opt\/zonecopy\/etc\/gnupg --batch --with-colons --list-keys -- ops@example\.com$/m,
    );
  });

  it('no public key for the recipient: refused, saying how to import it (into the configured keyring)', async () => {
    await assert.rejects(
      checkGpgRecipient(
        host,
        { gpgPath: fakeGpg(GPG_24, undefined).path, gpgHome: '/opt/zonecopy/etc/gnupg' },
        RECIPIENT,
      ),
      /no valid public key able to encrypt to s3\.gpgRecipient "ops@example\.com".*--homedir \/opt\/zonecopy\/etc\/gnupg --import KEY\.asc/,
    );
  });

  it('GnuPG 1.4 that cannot read the key at all: the ECC hint comes with the refusal', async () => {
    await assert.rejects(
      checkGpgRecipient(host, { gpgPath: fakeGpg(GPG_14, undefined).path }, RECIPIENT),
      /GnuPG 1\.4 does not read ECC keys.*pkgin install gnupg2/,
    );
  });

  it('a gpgPath that does not exist: refused, naming it', async () => {
    await assert.rejects(
      checkGpgRecipient(host, { gpgPath: '/nonexistent/gpg2' }, RECIPIENT),
      /\/nonexistent\/gpg2 --version failed.*s3\.gpgPath/,
    );
  });
});

describe('gpg parsing', () => {
  it('reads the version of 1.4 and 2.x', () => {
    assert.deepEqual(parseGpgVersion(GPG_14), [1, 4]);
    assert.deepEqual(parseGpgVersion(GPG_24), [2, 4]);
    assert.equal(parseGpgVersion('bash: gpg: not found'), undefined);
  });

  it('keeps valid keys able to encrypt, with algorithm and curve; drops revoked ones', () => {
    assert.deepEqual(encryptionKeys(CV25519), [{ algorithm: '18', curve: 'cv25519' }]);
    assert.deepEqual(encryptionKeys(RSA), [{ algorithm: '1' }]);
    assert.deepEqual(encryptionKeys(RSA_REVOKED_SUB), []);
  });
});

it('s3.gpgPath and gpgHome are the gpg and keyring of encryption and decryption', () => {
  const gpg = { gpgPath: '/opt/tools/bin/gpg2', gpgHome: '/opt/zonecopy/etc/gnupg' };
  assert.deepEqual(encryptArgv(RECIPIENT, gpg)[0]!.slice(0, 4), [
    '/opt/tools/bin/gpg2',
    '--homedir',
    '/opt/zonecopy/etc/gnupg',
    '--batch',
  ]);
  assert.deepEqual(decryptArgv(true, gpg)[0]!.slice(0, 4), [
    '/opt/tools/bin/gpg2',
    '--homedir',
    '/opt/zonecopy/etc/gnupg',
    '--batch',
  ]);
});

it('zonecopy backup --target s3 with GnuPG 1.4 and a cv25519 recipient: every VM fails with the reason, exit 1, and zfs never runs', () => {
  const dir = scratch();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const uuid = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
  writeFileSync(
    join(bin, 'vmadm'),
    `#!/bin/sh\nprintf 'vmadm %s\\n' "$*" >> '${dir}/calls'\n[ "$1" = lookup ] && echo '[{"uuid":"${uuid}","alias":"web01","brand":"joyent"}]' && exit 0\necho '{"uuid":"${uuid}","alias":"web01","brand":"joyent","zfs_filesystem":"zones/${uuid}"}'\n`,
  );
  writeFileSync(join(bin, 'zfs'), `#!/bin/sh\nprintf 'zfs %s\\n' "$*" >> '${dir}/calls'\nexit 1\n`);
  chmodSync(join(bin, 'vmadm'), 0o755);
  chmodSync(join(bin, 'zfs'), 0o755);
  const gpg = fakeGpg(GPG_14, CV25519);
  writeFileSync(
    join(dir, 'configuration.json'),
    JSON.stringify({
      backupTarget: 's3',
      s3: {
        bucket: 'zone-backups',
        endpoint: 'http://127.0.0.1:1',
        gpgRecipient: RECIPIENT,
        gpgPath: gpg.path,
        stateDirectory: join(dir, 'state'),
      },
      knownHostsPath: join(dir, 'known_hosts'),
      logDirectory: join(dir, 'log'),
      lockDirectory: join(dir, 'lock'),
      // the target's refusal before any snapshot (with the default, the VM is snapshotted and thinned here)
      snapshotWhenTargetsDown: false,
    }),
  );
  const run = spawnSync(
    process.execPath,
    [resolve('build/src/cli/run.js'), 'backup', '--config', join(dir, 'configuration.json'), uuid],
    {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 60_000,
    },
  );
  assert.equal(run.status, 1, run.stderr + run.stdout);
  assert.match(run.stderr, new RegExp(`backup of VM web01 \\(${uuid}\\): .*GnuPG 1\\.4, which cannot encrypt`));
  const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8') : '';
  assert.doesNotMatch(calls, /^zfs /m, 'zfs ran before the refusal');
});
