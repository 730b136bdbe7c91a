import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { RemoteHost } from '../../src/host/remote.js';
import { pipelineScript, remoteCommand } from '../../src/host/quote.js';
import { MbufferStrategy } from '../../src/transfer/mbuffer.js';
import { opensshArgv } from '../../src/transfer/openssh.js';
import type { StrategyOptions } from '../../src/transfer/strategy.js';
import { hostCommand } from './illumos-stand-in.js';
import { scratchDirectory } from './scratch.js';
import { newKey } from './ssh-key.js';

const { Server } = ssh2;

/**
 * sshd runs every exec request as `$SHELL -c '<command>'` with the user's login shell: root's is
 * csh on FreeBSD <= 13, dash for many Debian users, bash or ksh elsewhere. These tests give the
 * exact strings zonecopy sends to each of those shells, the way sshd does (a new session, the
 * user's home as the working directory, SSH_CONNECTION set, a PATH without GNU-only printenv).
 */
const LOGIN_SHELLS = ['csh', 'tcsh', 'dash', 'bash', 'ksh93'] as const;

const HOSTILE = [
  `a b`,
  `it's`,
  `$(touch zc-pwned)`,
  '`touch zc-pwned`',
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
  'a!b',
  '!!',
  '$HOME',
  '>&2',
  '{a,b}',
  '%1',
  '\t tab',
];
const SSH_CONNECTION = '192.0.2.7 50022 192.0.2.8 22';
/** What a remote command may use: POSIX tools, no printenv. */
const TOOLS = ['sh', 'cat', 'printf', 'sleep', 'true', 'false'];

const scratch = scratchDirectory('zc-login-shells-');

/** Runs `command` as sshd would under `shell`: in a session of its own, from `home`. */
function runAsSshd(shell: string, command: string, home: string, path: string): ChildProcess {
  return spawn(hostCommand(shell), ['-c', command], {
    cwd: home,
    env: { PATH: path, HOME: home, SHELL: hostCommand(shell), SSH_CONNECTION, USER: 'zcbackup' },
    detached: true,
    stdio: 'pipe',
  });
}

function toolsPath(): string {
  const tools = scratch();
  for (const tool of TOOLS) symlinkSync(hostCommand(tool), join(tools, tool));
  return tools;
}

const PATH = toolsPath();

/** `shell -c command` at once, for strings that are not sent over ssh2 (the OpenSSH child's). */
function runString(
  shell: string,
  command: string,
  input = '',
): { status: number | null; stdout: string; stderr: string; home: string } {
  const home = scratch();
  const out = spawnSync(hostCommand(shell), ['-c', command], {
    cwd: home,
    input,
    encoding: 'utf8',
    env: { PATH, HOME: home, SSH_CONNECTION },
    timeout: 20_000,
  });
  return { status: out.status, stdout: out.stdout, stderr: out.stderr, home };
}

for (const shell of LOGIN_SHELLS) {
  describe(`remote commands under a ${shell} login shell`, () => {
    let server: InstanceType<typeof Server>;
    let host: RemoteHost;
    const home = scratch();
    const children: ChildProcess[] = [];

    before(async () => {
      const clientKey = join(scratch(), 'id_ecdsa');
      writeFileSync(clientKey, newKey());
      server = new Server({ hostKeys: [newKey()] }, (client) => {
        client.on('authentication', (context) => context.accept());
        client.on('session', (accept) => {
          accept().on('exec', (acceptExec, _reject, info) => {
            const channel = acceptExec();
            const child = runAsSshd(shell, info.command, home, PATH);
            children.push(child);
            channel.pipe(child.stdin!);
            child.stdout!.pipe(channel, { end: false });
            child.stderr!.pipe(channel.stderr);
            child.on('close', (code, signal) => {
              if (code !== null) channel.exit(code);
              else channel.exit(signal!.replace(/^SIG/, ''), false, '');
              channel.end();
            });
          });
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      host = await RemoteHost.connect({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        username: 'zcbackup',
        privateKeyPath: clientKey,
        knownHostsPath: join(home, 'known_hosts'),
        disableHostKeyChecking: true,
        dryRun: false,
      });
    });

    after(async () => {
      await host?.close();
      server?.close();
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
    });

    it('run: every hostile argument arrives as itself, and nothing is written to the home folder', async () => {
      const out = await host.run(['printf', '%s\\0', ...HOSTILE], { mutates: false });
      assert.deepEqual(out.stdout.split('\0').slice(0, -1), HOSTILE);
      assert.equal(out.stderr, '');
      assert.deepEqual(readdirSync(home), [], 'no file named 2 (csh reads >&2 as "both to file 2") and nothing pwned');
    });

    it('run: a long command (16 KB: a long series of receives) arrives whole; BSD csh refuses a word over 8 KB', async () => {
      const names = Array.from(
        { length: 150 },
        (_, i) =>
          `backup/zones/0c9e4b6a-2d7f-4f31-b8a5-93e1d2c4f5a6/data/child-${i}@daily-2026-11-30T02:00:00.000Z it's`,
      );
      const out = await host.run(['printf', '%s\\0', ...names], { mutates: false });
      assert.deepEqual(out.stdout.split('\0').slice(0, -1), names);
    });

    it('run: exit statuses come back as they are', async () => {
      const failed = await host.run(['false'], { mutates: false, allowExitCodes: [1] });
      assert.equal(failed.exitCode, 1);
      assert.equal((await host.run(['true'], { mutates: false })).exitCode, 0);
    });

    it('spawn: stdin, stdout and hostile arguments pass through a pipeline; stderr carries nothing of ours', async () => {
      const stream = host.spawn([['printf', '%s\\0', ...HOSTILE], ['cat']]);
      stream.stdin.end();
      const chunks: Buffer[] = [];
      stream.stdout.on('data', (c: Buffer) => chunks.push(c));
      const done = await stream.done;
      assert.equal(done.exitCode, 0, done.stderr);
      assert.equal(done.stderr, '');
      assert.deepEqual(Buffer.concat(chunks).toString().split('\0').slice(0, -1), HOSTILE);
      const copy = host.spawn([['cat'], ['cat']]);
      copy.stdin.end('stream\nbytes');
      let copied = '';
      copy.stdout.on('data', (c: Buffer) => (copied += c.toString()));
      assert.equal((await copy.done).exitCode, 0);
      assert.equal(copied, 'stream\nbytes');
    });

    it('spawn: a failing first stage fails the pipeline with its status, as pipefail would', async () => {
      const statuses = async (pipeline: string[][]) => {
        const stream = host.spawn(pipeline);
        stream.stdin.end();
        stream.stdout.resume();
        return (await stream.done).exitCode;
      };
      assert.equal(await statuses([['sh', '-c', 'exit 3'], ['cat']]), 3);
      assert.equal(await statuses([['cat'], ['sh', '-c', 'exit 4']]), 4);
      assert.equal(
        await statuses([
          ['sh', '-c', 'exit 3'],
          ['sh', '-c', 'cat; exit 5'],
        ]),
        5,
        'the last failing stage, as pipefail',
      );
      assert.equal(await statuses([['true'], ['cat'], ['cat']]), 0);
    });

    it('spawn: kill ends the whole session process group', async () => {
      const before = children.length;
      const stream = host.spawn([['sleep', '60'], ['cat']]);
      stream.stdout.resume();
      const child = await waitFor(() => children[before]);
      await waitFor(() => groupAlive(child));
      // the pipeline has told its process group once its stderr has passed the mark
      await new Promise((r) => setTimeout(r, 500));
      await stream.kill();
      await waitFor(() => !groupAlive(child) || undefined, 10_000);
    });

    it('mbuffer learns the SmartOS host address from $SSH_CONNECTION without printenv', async () => {
      const strategy = new MbufferStrategy('mbuffer', { remote: host } as unknown as StrategyOptions);
      const address = await (strategy as unknown as { allowFrom(): Promise<string> }).allowFrom();
      assert.equal(address, '192.0.2.7');
    });

    it("a long script of nothing but quotes and bangs (quoting's worst case) stays within csh's word limit", () => {
      const worst = `'!`.repeat(6000);
      const out = runString(shell, remoteCommand([['printf', '%s', worst]]));
      assert.equal(out.status, 0, out.stderr);
      assert.equal(out.stdout, worst);
    });

    it("the OpenSSH bulk child's remote command keeps argv and statuses", () => {
      const target = {
        host: 'backup',
        port: 22,
        username: 'zcbackup',
        knownHostsPath: '/k',
        disableHostKeyChecking: false,
      };
      const sent = opensshArgv(target, [['printf', '%s\\0', ...HOSTILE], ['cat']]).at(-1)!;
      const out = runString(shell, sent, 'x');
      assert.equal(out.status, 0, out.stderr);
      assert.deepEqual(out.stdout.split('\0').slice(0, -1), HOSTILE);
      assert.deepEqual(readdirSync(out.home), []);
      assert.equal(runString(shell, opensshArgv(target, [['sh', '-c', 'exit 3'], ['cat']]).at(-1)!).status, 3);
    });
  });
}

describe('the remote script', () => {
  it('is one line, whatever the data', () => {
    const sent = remoteCommand([['printf', '%s', 'a\nb'], ['cat']], 'echo x; ');
    assert.ok(!sent.includes('\n'));
    assert.ok(!pipelineScript([['zfs', 'receive', 'backup/a\nb']]).includes('\n'));
  });
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

function groupAlive(child: ChildProcess): true | undefined {
  try {
    process.kill(-child.pid!, 0);
    return true;
  } catch {
    return undefined;
  }
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
