/**
 * The service's state, on a host whose vmadm answers when the test lets it. A SIGHUP that lands while
 * a cycle runs: the cycle's record (its notes, the VMs it found gone, its end) reaches the state the
 * service writes, not a copy the reload left behind (CI met this: a minutely cycle listing VMs across
 * a reload logged a deleted VM gone, and the state never showed it). A restart: each VM's newest
 * snapshot per target carries over from the previous state file, so its RPO lag is known at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { LocalHost } from '../../src/host/local.js';
import type { CommandResult } from '../../src/host/host.js';
import { renderMetrics } from '../../src/service/metrics.js';
import { Service } from '../../src/service/service.js';
import type { ServiceState } from '../../src/service/state.js';

const config = (every: string): Config =>
  configSchema.parse({
    backupDestination: 'backup.example',
    backupDestinationBasePath: 'backup/zones',
    serviceStateFile: '/nonexistent/service.json',
    policies: [{ name: 'rolling', vms: { filter: ['tags.backup=rolling'] }, every, group: 'rolling' }],
  });

/** A host whose `vmadm lookup` answers only when the test lets it, with the VMs the test gives. */
function gatedHost() {
  const asked: string[][] = [];
  let answer: (uuids: string[]) => void = () => undefined;
  let listing = new Promise<string[]>((resolve) => (answer = resolve));
  const host = {
    label: 'local',
    dryRun: false,
    async run(argv: readonly string[]): Promise<CommandResult> {
      asked.push([...argv]);
      const uuids = await listing;
      listing = new Promise<string[]>((resolve) => (answer = resolve));
      const stdout = JSON.stringify(uuids.map((uuid) => ({ uuid, alias: 'x', state: 'running', brand: 'joyent' })));
      return { host: 'local', command: argv.join(' '), stdout, stderr: '', exitCode: 0 };
    },
  };
  return { host: host as unknown as LocalHost, asked, answer: (uuids: string[]) => answer(uuids) };
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !probe(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(probe(), what);
}

describe('serve: a reload during a cycle', () => {
  it('keeps the cycle recording into the state written: its notes, its end, the reload applied', async () => {
    const { host, asked, answer } = gatedHost();
    const written: ServiceState[] = [];
    const warnings: string[] = [];
    const service = new Service(config('1h'), {
      configPath: '/nonexistent/configuration.json',
      load: () => config('2h'),
      local: host,
      log: { info: () => undefined, verbose: () => undefined, warn: (m) => warnings.push(m) },
      write: (_path, state) => written.push(JSON.parse(JSON.stringify(state)) as ServiceState),
    });
    const cycle = service.once();
    await until('the cycle asks vmadm', () => asked.length === 1);
    assert.equal(service.reload(), true);
    answer([]);
    await cycle;

    const policy = service.state.policies[0]!;
    assert.equal(policy.when, 'every 2h', 'the reload took effect');
    assert.equal(policy.cycles, 1);
    assert.deepEqual(policy.notes, ['--filter tags.backup=rolling matches no VM on this host']);
    assert.ok(policy.lastFinishedAt !== undefined, 'the cycle end is recorded');
    assert.deepEqual(written.at(-1)!.policies[0]!.notes, policy.notes, 'and written');
    assert.match(warnings.join('\n'), /policy rolling: --filter tags\.backup=rolling matches no VM/);
  });

  it("a restart carries each VM's newest snapshot per target still configured over from the previous state: its RPO lag is known before its first cycle ends; counters start at zero", async () => {
    const now = Date.now() / 1000;
    const A = '11111111-2222-4333-8444-555555555555';
    const vm = (uuid: string, policy: string, target = 'backup.example') => ({
      uuid,
      alias: 'web1',
      policy,
      target,
      running: true,
      lastStatus: 'success' as const,
      lastSuccessAt: Math.round(now - 590),
      newestSnapshotAt: now - 600,
      bytesSentTotal: 5000,
      failuresTotal: 3,
      successesTotal: 10,
      rpoWorstSeconds: 9999,
    });
    const previous: ServiceState = {
      version: 1,
      pid: 1,
      startedAt: Math.round(now - 86400),
      heartbeat: Math.round(now - 300),
      stoppedAt: Math.round(now - 300),
      config: { path: '/nonexistent/configuration.json', loadedAt: Math.round(now - 86400) },
      policies: [],
      // the policy removed and the target no longer configured are not carried over: their lag would grow for ever
      vms: [vm(A, 'rolling'), vm(A, 'removed'), vm(A, 'rolling', 'gone.example')],
      transfers: [],
    };
    const { host, asked, answer } = gatedHost();
    const service = new Service(config('1h'), {
      configPath: '/nonexistent/configuration.json',
      load: () => config('1h'),
      local: host,
      log: { info: () => undefined, verbose: () => undefined, warn: () => undefined },
      write: () => undefined,
      previous,
    });
    assert.deepEqual(service.state.vms, [
      {
        uuid: A,
        alias: 'web1',
        policy: 'rolling',
        target: 'backup.example',
        running: false,
        bytesSentTotal: 0,
        failuresTotal: 0,
        newestSnapshotAt: now - 600,
        lastSuccessAt: Math.round(now - 590),
      },
    ]);
    const lag = new RegExp(`^zonecopy_rpo_lag_seconds\\{[^}]*uuid="${A}"[^}]*\\} (\\d+(\\.\\d+)?)$`, 'm');
    const cycle = service.once();
    await until('the cycle asks vmadm', () => asked.length === 1);
    const seconds = Number(lag.exec(renderMetrics(service.state, Date.now() / 1000))?.[1]);
    assert.ok(seconds >= 600 && seconds < 660, `RPO lag ${seconds} s, the snapshot 600 s old`);
    // the VM is no longer on this host: the policy's first cycle drops what was carried over
    answer([]);
    await cycle;
    assert.deepEqual(service.state.vms, []);
  });
});
