/**
 * `zonecopy serve` as a process, on a host whose vmadm lists no VM: the loop, the state file, the
 * metrics endpoint, SIGHUP (good and bad configurations) and SIGTERM, without ZFS or a backup host.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { ServiceState } from '../../src/service/state.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-serve-');
const ENTRY = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

/** A directory with a vmadm that lists no VM (and says so in a file each time it is asked). */
function emptyHost(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'vmadm'), `#!/bin/sh\necho "$*" >> ${dir}/vmadm.calls\necho '[]'\n`);
  chmodSync(join(bin, 'vmadm'), 0o755);
  return bin;
}

function setUp(every = '1s') {
  const dir = scratch();
  const bin = emptyHost(dir);
  const stateFile = join(dir, 'service.json');
  const configPath = join(dir, 'configuration.json');
  const write = (policyEvery: string) =>
    writeFileSync(
      configPath,
      JSON.stringify({
        backupDestination: 'backup.example',
        backupDestinationBasePath: 'backup/zones',
        logDirectory: join(dir, 'log'),
        serviceStateFile: stateFile,
        metricsTextfile: join(dir, 'metrics', 'zonecopy.prom'),
        policies: [{ name: 'rolling', vms: { filter: ['tags.backup=rolling'] }, every: policyEvery, group: 'rolling' }],
      }),
    );
  write(every);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  return { dir, stateFile, configPath, write, env };
}

const state = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as ServiceState;

async function until<T>(what: string, probe: () => T | undefined, seconds = 10): Promise<T> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    try {
      const value = probe();
      if (value !== undefined && value !== false) return value;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${seconds} s`);
}

/** `zonecopy serve ARGS` as a process: its stderr so far, and its exit. */
function serving(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [ENTRY, 'serve', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, log: () => stderr, exited };
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('zonecopy serve (no VMs, no backup host)', () => {
  it('refuses a configuration without policies, or with a bad one: exit 2 before anything runs', () => {
    const { configPath, env, dir } = setUp();
    writeFileSync(configPath, JSON.stringify({ backupDestination: 'b', backupDestinationBasePath: 'backup/zones' }));
    const none = spawnSync(process.execPath, [ENTRY, 'serve', '--config', configPath], { encoding: 'utf8', env });
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /no "policies": serve needs at least one/);
    const bad = spawnSync(process.execPath, [ENTRY, 'serve', '--config', configPath, '--metrics-listen', 'nohost'], {
      encoding: 'utf8',
      env,
    });
    assert.equal(bad.status, 2);
    assert.equal(existsSync(join(dir, 'vmadm.calls')), false, 'vmadm was never asked');
  });

  it('cycles, keeps its state file and heartbeat, serves metrics, reloads on SIGHUP (refusing a bad file), and exits 0 on SIGTERM', async () => {
    const { stateFile, configPath, write, env, dir } = setUp('1s');
    const { child, log, exited } = serving(['--config', configPath, '--metrics-listen', '127.0.0.1:0'], env);
    try {
      const port = await until(
        'the metrics port in the log',
        () => /metrics on http:\/\/127\.0\.0\.1:(\d+)\//.exec(log())?.[1],
      );
      const cycled = await until('three cycles', () => {
        const s = state(stateFile);
        return s.policies[0]!.cycles >= 3 ? s : undefined;
      });
      assert.equal(cycled.pid, child.pid);
      assert.deepEqual(cycled.policies[0]!.notes, ['--filter tags.backup=rolling matches no VM on this host']);
      assert.match(log(), /warning: policy rolling: --filter tags\.backup=rolling matches no VM on this host/);
      // each cycle asked vmadm with the policy's filter
      assert.match(readFileSync(join(dir, 'vmadm.calls'), 'utf8'), /^lookup -j -o \S+ tags\.backup=rolling$/m);

      const metrics = await get(`http://127.0.0.1:${port}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /^zonecopy_policy_cycles_total\{policy="rolling"\} \d+$/m);
      assert.ok(existsSync(join(dir, 'metrics', 'zonecopy.prom')), 'the textfile');

      write('15');
      child.kill('SIGHUP');
      const refused = await until('the bad file refused', () => state(stateFile).config.reloadError);
      assert.match(refused, /policies\.0\.every/);
      assert.equal(state(stateFile).policies[0]!.when, 'every 1s');

      write('2s');
      child.kill('SIGHUP');
      const reloaded = await until('the good file in use', () => {
        const s = state(stateFile);
        return s.policies[0]!.when === 'every 2s' && s.config.reloadError === undefined ? s : undefined;
      });
      assert.ok(reloaded.policies[0]!.cycles >= 3, 'the counts survive a reload');

      const beat = state(stateFile).heartbeat;
      await until('the heartbeat moves', () => state(stateFile).heartbeat > beat || undefined, 8);

      child.kill('SIGTERM');
      assert.equal(await exited, 0, log());
      assert.match(log(), /SIGTERM: no new cycles/);
      assert.equal(state(stateFile).policies[0]!.nextAt, undefined, 'nothing scheduled once stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    }
  });

  it('--once runs each policy once and exits 1 when a policy matched nothing', () => {
    const { configPath, env, stateFile } = setUp('1h');
    const once = spawnSync(process.execPath, [ENTRY, 'serve', '--once', '--config', configPath], {
      encoding: 'utf8',
      env,
    });
    assert.equal(once.status, 1, once.stderr);
    assert.equal(state(stateFile).policies[0]!.cycles, 1);
  });

  it('SIGTERM waits for the running cycle; a second SIGTERM exits at once, 0', async () => {
    const { configPath, env, dir } = setUp('1h');
    // vmadm lookup holds the cycle until the file `go` appears, or the directory goes (it ends by itself after the test)
    writeFileSync(
      join(dir, 'bin', 'vmadm'),
      `#!/bin/sh\necho "$*" >> ${dir}/vmadm.calls\nwhile [ ! -e ${dir}/go ] && [ -d ${dir} ]; do sleep 0.05; done\necho '[]'\n`,
    );
    const { child, log, exited } = serving(['--config', configPath], env);
    try {
      await until('the cycle asks vmadm', () => existsSync(join(dir, 'vmadm.calls')));
      child.kill('SIGTERM');
      await until('the first SIGTERM said', () => /SIGTERM: no new cycles/.test(log()));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, 'still waiting for the cycle');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, log());
      assert.match(log(), /SIGTERM again: exiting now/);
      assert.doesNotMatch(log(), /^stopped$/m, 'it did not wait for the cycle');
    } finally {
      writeFileSync(join(dir, 'go'), '');
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
});
