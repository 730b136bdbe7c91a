import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2, { type ServerChannel } from 'ssh2';
import { RemoteHost } from '../../src/host/remote.js';
import { newKey } from './ssh-key.js';

const { Server } = ssh2;

/**
 * An ssh2 server in this process that answers every exec at once: output, exit status and close
 * leave in one burst, so the client reads them in one chunk together with the exec reply. That is
 * what a loaded machine does to a fast command (`zfs holds` in CI); the exit status must survive it.
 */
describe('remote commands over ssh2', () => {
  let server: InstanceType<typeof Server>;
  let host: RemoteHost;
  const dir = mkdtempSync(join(tmpdir(), 'zc-remote-exit-'));

  before(async () => {
    const clientKey = join(dir, 'id_ecdsa');
    writeFileSync(clientKey, newKey());
    server = new Server({ hostKeys: [newKey()] }, (client) => {
      client.on('authentication', (context) => context.accept());
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => answer(acceptExec(), info.command));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = await RemoteHost.connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      username: 'zonecopy',
      privateKeyPath: clientKey,
      knownHostsPath: join(dir, 'known_hosts'),
      disableHostKeyChecking: true,
      dryRun: false,
    });
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await host?.close();
    server?.close();
  });

  /** `exit N` ends with status N, `signal NAME` as if killed by it; anything else prints its name and exits 0. */
  function answer(channel: ServerChannel, command: string): void {
    // the script inside the login-shell wrapper `exec /bin/sh -c '<script>'`
    const script = /^exec \/bin\/sh -c '(.*)'$/.exec(command)?.[1] ?? command;
    const [verb, argument] = script
      .slice(script.lastIndexOf(';') + 1)
      .trim()
      .split(' ');
    if (verb === 'exit') channel.exit(Number(argument));
    else if (verb === 'signal') channel.exit(argument!, false, '');
    else {
      channel.write(`${command}\n`);
      channel.exit(0);
    }
    channel.end();
  }

  it('keeps the exit status of a command whose reply, output, status and close arrive together', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        host.run(['exit', String(i % 3 === 0 ? 0 : 7)], { mutates: false, allowExitCodes: [7] }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.exitCode),
      Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 0 : 7)),
    );
    const printed = await host.run(['holds', 'a@b'], { mutates: false });
    assert.equal(printed.exitCode, 0);
    assert.match(printed.stdout, /^exec \/bin\/sh -c 'holds a@b'\n$/);
  });

  it('reports a command killed by a signal as 128 + that signal', async () => {
    const killed = await host.run(['signal', 'KILL'], { mutates: false, allowExitCodes: [137] });
    assert.equal(killed.exitCode, 137);
  });

  it('keeps the exit status of a streamed command too', async () => {
    const stream = host.spawn([['exit', '5']]);
    stream.stdin.end();
    stream.stdout.resume();
    assert.equal((await stream.done).exitCode, 5);
  });
});
