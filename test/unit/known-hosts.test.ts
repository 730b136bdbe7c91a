import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fingerprint, verifyHostKey } from '../../src/host/known-hosts.js';
import { scratchDirectory } from './scratch.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}
const KEY = blob('ssh-ed25519', 'key-one');
const OTHER = blob('ssh-ed25519', 'key-two');

const scratch = scratchDirectory('zc-known-hosts-');

function file(text: string): string {
  const path = join(scratch(), 'known_hosts');
  writeFileSync(path, text);
  return path;
}

describe('verifyHostKey', () => {
  it('accepts the pinned key, plain and [host]:port forms', () => {
    verifyHostKey(file(`backup.example ssh-ed25519 ${KEY.toString('base64')}\n`), 'backup.example', 22, KEY);
    verifyHostKey(file(`[10.0.0.5]:2222 ssh-ed25519 ${KEY.toString('base64')}\n`), '10.0.0.5', 2222, KEY);
  });

  it('accepts hashed entries', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('backup.example').digest('base64');
    verifyHostKey(
      file(`|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${KEY.toString('base64')}\n`),
      'backup.example',
      22,
      KEY,
    );
  });

  it('refuses an unknown host with the fingerprint and the command that pins it', () => {
    assert.throws(
      () => verifyHostKey(file(''), 'backup.example', 22, KEY),
      (e: Error) => e.message.includes(fingerprint(KEY)) && e.message.includes('ssh-keyscan -t ed25519 backup.example'),
    );
  });

  it('prints the ssh-keyscan step for port 22 with the short key type and no -p', () => {
    assert.throws(
      () => verifyHostKey(file(''), 'backup.example', 22, KEY),
      (e: Error) => {
        assert.match(e.message, /ssh-keyscan -t ed25519 backup\.example >> /);
        assert.doesNotMatch(e.message, / -p |\[backup\.example\]/);
        return true;
      },
    );
  });

  it('prints the ssh-keyscan step for another port with -p and explains the [host]:port entry', () => {
    assert.throws(
      () => verifyHostKey(file(''), 'backup.example', 2222, KEY),
      (e: Error) => {
        assert.match(e.message, /ssh-keyscan -p 2222 -t ed25519 backup\.example >> /);
        assert.match(e.message, /\[backup\.example\]:2222/);
        return true;
      },
    );
  });

  it('names key types as ssh-keyscan -t spells them', () => {
    const cases: Array<[string, string]> = [
      ['ssh-rsa', 'rsa'],
      ['ecdsa-sha2-nistp256', 'ecdsa'],
      ['ssh-ed25519', 'ed25519'],
      ['sk-ssh-ed25519@openssh.com', 'ed25519-sk'],
    ];
    for (const [type, short] of cases) {
      assert.throws(
        () => verifyHostKey(file(''), 'h', 22, blob(type, 'k')),
        (e: Error) => e.message.includes(`ssh-keyscan -t ${short} h >> `),
        type,
      );
    }
  });

  it('refuses a changed key, naming the line and both fingerprints', () => {
    const path = file(`# comment\nbackup.example ssh-ed25519 ${KEY.toString('base64')}\n`);
    assert.throws(
      () => verifyHostKey(path, 'backup.example', 22, OTHER),
      (e: Error) =>
        /HOST KEY CHANGED/.test(e.message) && e.message.includes(`${path}:2`) && e.message.includes(fingerprint(OTHER)),
    );
  });

  it('does not take a key pinned for another port or a negated pattern', () => {
    assert.throws(() =>
      verifyHostKey(file(`backup.example ssh-ed25519 ${KEY.toString('base64')}\n`), 'backup.example', 2222, KEY),
    );
    assert.throws(() =>
      verifyHostKey(
        file(`*.example,!backup.example ssh-ed25519 ${KEY.toString('base64')}\n`),
        'backup.example',
        22,
        KEY,
      ),
    );
  });
});
