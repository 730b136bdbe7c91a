import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { commandLine, pipelineScript, shellQuote } from '../../src/host/quote.js';
import { opensshArgv } from '../../src/transfer/openssh.js';

const HOSTILE = [
  `a b`,
  `it's`,
  `$(touch /tmp/zc-pwned)`,
  '`id`',
  'x;y',
  'new\nline',
  `"dq"`,
  '*',
  '~root',
  '--',
  '',
  'a|b',
  '\\',
  '!bang',
  '$HOME',
];

describe('shellQuote', () => {
  it('passes plain ZFS names through untouched', () => {
    assert.equal(
      commandLine(['zfs', 'send', '-i', 'zones/a@daily-2026-01-01T00:00:00.000Z', 'zones/a-disk0@x']),
      'zfs send -i zones/a@daily-2026-01-01T00:00:00.000Z zones/a-disk0@x',
    );
  });

  it('makes every hostile argument arrive in sh as exactly itself', () => {
    const line = commandLine(['printf', '%s\\0', ...HOSTILE]);
    const out = execFileSync('sh', ['-c', line]).toString();
    assert.deepEqual(out.split('\0').slice(0, -1), HOSTILE);
  });

  it('quotes the empty string so it stays an argument', () => {
    assert.equal(shellQuote(''), `''`);
  });

  it('builds pipelines whose failing first stage fails the whole, in a sh without pipefail (dash)', () => {
    const line = pipelineScript([['sh', '-c', 'exit 3'], ['cat']]);
    assert.doesNotMatch(line, /pipefail/);
    let code = 0;
    try {
      execFileSync('dash', ['-c', line]);
    } catch (error) {
      code = (error as { status: number }).status;
    }
    assert.equal(code, 3);
  });

  it('hands the OpenSSH bulk child the remote pipeline as one argument, quoted once, with the host key checked', () => {
    const target = {
      host: '-oProxyCommand=x',
      port: 2222,
      username: 'root',
      privateKeyPath: '/root/.ssh/id',
      knownHostsPath: '/etc/zc hosts',
      disableHostKeyChecking: false,
    };
    for (const name of HOSTILE) {
      const argv = opensshArgv(target, [['cat'], ['printf', '%s\\0', '-u', `backup/${name}`]]);
      // the login shell (bash here; test/unit/login-shells.test.ts has the others) turns that one argument back into exactly our argv
      const out = execFileSync('bash', ['-c', argv[argv.length - 1]!], { encoding: 'utf8', input: '' });
      assert.deepEqual(out.split('\0').slice(0, -1), ['-u', `backup/${name}`]);
    }
    const argv = opensshArgv(target, [['true']]);
    assert.deepEqual(
      argv.slice(-3),
      ['--', '-oProxyCommand=x', `exec /bin/sh -c 'true'`],
      'a host name never becomes an option',
    );
    assert.ok(
      argv.includes('StrictHostKeyChecking=yes') &&
        argv.includes('UserKnownHostsFile=/etc/zc hosts') &&
        argv.includes('BatchMode=yes'),
    );
    assert.ok(
      opensshArgv({ ...target, disableHostKeyChecking: true }, [['true']]).includes('StrictHostKeyChecking=no'),
    );
  });
});
