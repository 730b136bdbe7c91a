/**
 * The service's SSH connections across cycles, against an ssh2 server in this process that the test
 * can cut and bring back: one connection shared by every policy, opened again after a drop (the old
 * targets closed only when the cycle using them is done), kept over a reload that does not change
 * the endpoint, tried again every cycle while the host is down, all closed on stop.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2, { type Connection } from 'ssh2';
import type { TargetOptions } from '../../src/backup/open-targets.js';
import { configSchema } from '../../src/config/schema.js';
import { resolveTargets } from '../../src/config/targets.js';
import type { LocalHost } from '../../src/host/local.js';
import { silentLog } from '../../src/log.js';
import { Connections } from '../../src/service/connections.js';
import { scratchDirectory } from './scratch.js';
import { ScriptedHost } from './scripted-host.js';
import { newKey } from './ssh-key.js';

const { Server } = ssh2;
const scratch = scratchDirectory('zc-serve-connections-');

/** A backup host that answers every command with nothing and exit 0 (every program is there), and counts its clients. */
class BackupHost {
  private server?: InstanceType<typeof Server>;
  readonly clients = new Set<Connection>();
  logins = 0;
  private readonly hostKey = newKey();
  port = 0;

  async up(): Promise<void> {
    this.server = new Server({ hostKeys: [this.hostKey] }, (client) => {
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      client.on('error', () => undefined);
      client.on('authentication', (context) => context.accept());
      client.on('ready', () => (this.logins += 1));
      client.on('session', (accept) =>
        accept().on('exec', (acceptExec) => {
          const channel = acceptExec();
          channel.exit(0);
          channel.end();
        }),
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The host cut: every client dropped, nothing listening. */
  async down(): Promise<void> {
    for (const client of this.clients) client.end();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    await until('every client gone', () => this.clients.size === 0);
  }
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !probe(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(probe(), what);
}

describe('serve: connections kept across cycles', () => {
  const host = new BackupHost();
  const dir = scratch();
  const key = join(dir, 'id_ecdsa');
  const local = new ScriptedHost([]) as unknown as LocalHost;
  const options: TargetOptions = { local, log: silentLog, print: () => undefined, group: 'daily', vmConcurrency: 1 };
  const targets = (user = 'zcbackup') =>
    resolveTargets(
      configSchema.parse({
        backupDestination: '127.0.0.1',
        backupDestinationPort: host.port,
        backupDestinationUsername: user,
        backupDestinationBasePath: 'backup/zones',
        backupDestinationPrivateKeyPath: key,
        knownHostsPath: join(dir, 'known_hosts'),
        disableHostKeyChecking: true,
      }),
    );

  before(async () => {
    writeFileSync(key, newKey());
    await host.up();
  });
  after(() => host.down());

  it('one connection for every policy; a drop reconnects at the next lease, the old set closed when its cycle ends; a reload keeps the connection unless its endpoint changed', async () => {
    const connections = new Connections();
    try {
      const nightly = await connections.lease('nightly', targets(), options);
      const hourly = await connections.lease('hourly', targets(), options);
      assert.equal(nightly.opened[0]!.error, undefined, nightly.opened[0]!.error);
      assert.equal(connections.connects, 1);
      assert.equal(host.logins, 1);
      assert.equal(nightly.opened[0]!.remote, hourly.opened[0]!.remote, 'both policies on one connection');
      assert.notEqual(nightly.opened[0]!.target, hourly.opened[0]!.target, 'each policy its own target');
      await nightly.release();
      await hourly.release();

      // the next cycle gets the same targets over the same connection
      const again = await connections.lease('nightly', targets(), options);
      assert.equal(again.opened[0]!.target, nightly.opened[0]!.target);
      assert.equal(connections.connects, 1);

      // the backup host drops every client while that cycle runs, and is back
      const first = again.opened[0]!.remote!;
      for (const client of host.clients) client.end();
      await until('the drop seen', () => first.closed);
      const after = await connections.lease('nightly', targets(), options);
      assert.equal(connections.connects, 2, 'connected again');
      assert.notEqual(after.opened[0]!.remote, first);
      assert.equal(after.opened[0]!.error, undefined);
      await again.release();
      await after.release();

      // a reload with the same endpoint: targets opened anew, the connection kept
      connections.invalidate();
      const reloaded = await connections.lease('nightly', targets(), options);
      assert.notEqual(reloaded.opened[0]!.target, after.opened[0]!.target, 'the target opened again');
      assert.equal(reloaded.opened[0]!.remote, after.opened[0]!.remote, 'on the same connection');
      assert.equal(connections.connects, 2);
      await reloaded.release();

      // a reload that changes the user: a new connection; the old one is closed once nothing uses it
      connections.invalidate();
      const other = await connections.lease('nightly', targets('zcother'), options);
      assert.equal(connections.connects, 3);
      await other.release();
      await until('the old connection closed', () => reloaded.opened[0]!.remote!.closed);
      await until('one client left on the backup host', () => host.clients.size === 1);
    } finally {
      await connections.closeAll();
    }
    await until('closeAll ended every connection', () => host.clients.size === 0);
  });

  it('the backup host down: the lease says so (down); each cycle tries again and connects once it is back', async () => {
    const connections = new Connections();
    try {
      await host.down();
      const down = await connections.lease('nightly', targets(), options);
      assert.equal(down.opened[0]!.down, true, down.opened[0]!.error);
      assert.match(down.opened[0]!.error ?? '', /127\.0\.0\.1/);
      assert.equal(connections.connects, 0);
      await down.release();
      const still = await connections.lease('nightly', targets(), options);
      assert.equal(still.opened[0]!.down, true, 'tried again, still down');
      await still.release();
      await host.up();
      const back = await connections.lease('nightly', targets(), options);
      assert.equal(back.opened[0]!.error, undefined, back.opened[0]!.error);
      assert.equal(connections.connects, 1);
      await back.release();
    } finally {
      await connections.closeAll();
    }
  });
});
