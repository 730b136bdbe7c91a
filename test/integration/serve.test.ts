/**
 * `zonecopy serve` for a few minutes against real ZFS: a continuous policy (every 15 s) and a cron
 * policy (every minute) over overlapping VMs, while a VM is created (matched by the continuous
 * policy's filter), one is deleted, and the backup host is cut off and comes back; its metrics are
 * scraped over HTTP, its configuration reloaded by SIGHUP (a good one, then a bad one), and it is
 * stopped by SIGTERM in the middle of a stream; the next start completes its cycle.
 * Every cycle is accounted for: the state file's counts, one log line per VM cycle, each
 * successful cycle's snapshot on the target, and no two cycles of one VM ever overlapping.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServiceState, VmTargetState } from '../../src/service/state.js';
import { IMAGES } from '../sim/fixtures.js';
import { BASE, KEEP, PROJECT, releaseHolds, resetHosts, run, sh, snapshotsOf, zonecopy } from './harness.js';

const SSHD = '/etc/zonecopy-test/backup-host';
const METRICS = '127.0.0.1:19464';

interface Serving {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

describe('zonecopy serve: two policies for a few minutes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zonecopy-serve-'));
  const configPath = join(dir, 'configuration.json');
  const stateFile = join(dir, 'service.json');
  let serving: Serving | undefined;
  const uuids: Record<string, string> = {};

  const config = (rolling: Record<string, unknown> = {}) => ({
    backupDestination: '127.0.0.2',
    backupDestinationUsername: 'zcbackup',
    backupDestinationPrivateKeyPath: `${KEEP}/id_ed25519`,
    knownHostsPath: `${KEEP}/known_hosts`,
    backupDestinationBasePath: BASE,
    logDirectory: join(dir, 'log'),
    lockDirectory: join(dir, 'lock'),
    serviceStateFile: stateFile,
    metricsTextfile: join(dir, 'metrics', 'zonecopy.prom'),
    policies: [
      {
        name: 'rolling',
        vms: { filter: ['tags.backup=rolling'] },
        every: '15s',
        group: 'rolling',
        localRetention: '3',
        ...rolling,
      },
      {
        name: 'minutely',
        vms: { filter: ['tags.minutely=yes'] },
        schedule: '* * * * *',
        group: 'minutely',
        localRetention: '2',
      },
    ],
  });
  const writeConfig = (content: unknown) => writeFileSync(configPath, JSON.stringify(content, null, 2));

  const readState = (): ServiceState => JSON.parse(readFileSync(stateFile, 'utf8')) as ServiceState;
  const vmState = (state: ServiceState, policy: string, alias: string): VmTargetState | undefined =>
    state.vms.find((v) => v.policy === policy && v.uuid === uuids[alias]);
  /** Polls the state file until `check` holds; fails with the last state and the service's log. */
  /** The service's log shows this line: it says things as the state file does, but its stderr comes through a pipe, so allow it a moment. */
  async function logShows(line: RegExp): Promise<void> {
    for (let i = 0; i < 20 && !line.test(serving!.stderr()); i++) await new Promise((r) => setTimeout(r, 250));
    assert.match(serving!.stderr(), line);
  }

  async function waitFor(what: string, check: (s: ServiceState) => boolean, seconds = 120): Promise<ServiceState> {
    const end = Date.now() + seconds * 1000;
    let last: ServiceState | undefined;
    while (Date.now() < end) {
      if (existsSync(stateFile)) {
        try {
          last = readState();
          if (check(last)) return last;
        } catch {
          // read between write and rename cannot happen (rename is atomic); a JSON error would be a bug: retried, then reported
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.fail(
      `${what}: not within ${seconds} s\nstate: ${JSON.stringify(last, null, 1)}\nlog:\n${serving?.stderr()}`,
    );
  }

  function serve(args: readonly string[] = []): Serving {
    const env = ['PATH=/usr/sbin:/usr/bin', 'HOME=/root', `ZONECOPY_CONFIG=${configPath}`];
    const child = spawn('/usr/bin/env', ['-i', ...env, `${PROJECT}/bin/zonecopy`, 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, stderr: () => text, exited };
  }

  async function createVm(alias: string, tags: Record<string, string>): Promise<string> {
    const payload = { brand: 'joyent', alias, image_uuid: IMAGES.base, quota: 1, max_physical_memory: 128, tags };
    await run('vmadm', ['create'], { input: JSON.stringify(payload) });
    const uuid = (await sh(`vmadm lookup -1 alias=${alias}`)).trim();
    await sh(`head -c 65536 /dev/urandom > /zones/${uuid}/root/${alias}.bin`);
    return uuid;
  }

  const cutBackupHost = () => sh(`pkill -P "$(cat ${SSHD}/sshd.pid)" || true; kill "$(cat ${SSHD}/sshd.pid)"`);
  const restoreBackupHost = () => sh(`/usr/sbin/sshd -f ${SSHD}/sshd_config -E ${SSHD}/sshd.log`);

  before(async () => {
    await resetHosts();
    // the image the zones are cloned from, as `imgadm import` brings it
    await sh(`imgadm import ${IMAGES.base} >/dev/null`);
    uuids.web1 = await createVm('web1', { backup: 'rolling', minutely: 'yes' });
    uuids.old1 = await createVm('old1', { minutely: 'yes' });
    writeConfig(config());
  });

  after(async () => {
    if (serving && serving.child.exitCode === null) {
      serving.child.kill('SIGKILL');
      await serving.exited;
    }
    // the backup host's sshd runs again whatever happened
    await run('bash', [
      '-c',
      `kill -0 "$(cat ${SSHD}/sshd.pid)" 2>/dev/null || /usr/sbin/sshd -f ${SSHD}/sshd_config -E ${SSHD}/sshd.log`,
    ]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs both policies while a VM comes and one goes and the backup host is cut and back; reloads; scrapes; stops mid-stream; starts clean', async () => {
    const started = Date.now();
    serving = serve(['--metrics-listen', METRICS]);

    // the continuous policy backs up web1 (and web2 once it exists); the minutely one web1 and old1
    await waitFor('web1 backed up by rolling', (s) => (vmState(s, 'rolling', 'web1')?.successesTotal ?? 0) >= 1);
    uuids.web2 = await createVm('web2', { backup: 'rolling' });
    await waitFor(
      'web2 (created while serving) backed up by rolling',
      (s) => (vmState(s, 'rolling', 'web2')?.successesTotal ?? 0) >= 1,
    );
    const beforeDelete = await waitFor(
      'old1 backed up by minutely, its cycle over',
      (s) => (vmState(s, 'minutely', 'old1')?.successesTotal ?? 0) >= 1 && !vmState(s, 'minutely', 'old1')!.running,
    );
    assert.equal(vmState(beforeDelete, 'rolling', 'old1'), undefined, 'old1 does not match the rolling filter');
    await releaseHolds(uuids.old1!);
    await sh(`vmadm delete ${uuids.old1}`);

    // the backup host cut: cycles fail (snapshots are still taken here), then it is back and they succeed over a new connection
    const cutAt = readState();
    const failuresBefore = vmState(cutAt, 'rolling', 'web1')!.failuresTotal;
    const cutStarted = Date.now();
    await cutBackupHost();
    const down = await waitFor(
      'a rolling cycle fails while the backup host is cut',
      (s) => vmState(s, 'rolling', 'web1')!.failuresTotal > failuresBefore,
    );
    assert.ok(vmState(down, 'rolling', 'web1')!.lastError, 'the failure says why');
    await restoreBackupHost();
    const cutSeconds = (Date.now() - cutStarted) / 1000;
    const successesAfterCut = vmState(down, 'rolling', 'web1')!.successesTotal ?? 0;
    const back = await waitFor(
      'rolling succeeds again once the backup host is back',
      (s) => (vmState(s, 'rolling', 'web1')?.successesTotal ?? 0) > successesAfterCut,
    );
    assert.ok((back.connects ?? 0) >= 2, `a new connection after the cut (connects ${back.connects})`);
    // the snapshot on the target was older than the cut when the first one after it arrived: the worst lag shows it
    assert.ok(
      (vmState(back, 'rolling', 'web1')!.rpoWorstSeconds ?? 0) >= cutSeconds,
      `worst RPO lag ${vmState(back, 'rolling', 'web1')!.rpoWorstSeconds} s, cut for ${cutSeconds} s`,
    );

    // metrics over HTTP, parsed
    const scraped = await httpGet(`http://${METRICS}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.type ?? '', /^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(scraped.body);
    const web1 = samples.filter((s) => s.labels.uuid === uuids.web1 && s.labels.policy === 'rolling');
    const value = (name: string) => web1.find((s) => s.name === name)?.value;
    assert.ok((value('zonecopy_sent_bytes_total') ?? 0) > 0, scraped.body);
    assert.ok((value('zonecopy_failures_total') ?? 0) >= 1, 'the cut shows as failures');
    assert.ok(value('zonecopy_rpo_lag_seconds') !== undefined, 'RPO lag per VM and target');
    assert.ok(
      samples.some((s) => s.name === 'zonecopy_policy_cycles_total' && s.labels.policy === 'minutely' && s.value >= 1),
      'the cron policy has cycled',
    );
    assert.ok(existsSync(join(dir, 'metrics', 'zonecopy.prom')), 'the textfile is written');
    assert.equal((await httpGet(`http://${METRICS}/other`)).status, 404);

    // SIGHUP with a good configuration: rolling every 20s from now; then a bad one is refused and the good one stays
    const loaded = readState().config.loadedAt;
    writeConfig(config({ every: '20s' }));
    serving.child.kill('SIGHUP');
    await waitFor(
      'the good configuration is in use',
      (s) => s.policies.find((p) => p.name === 'rolling')!.when === 'every 20s',
    );
    const good = readState();
    assert.ok(good.config.loadedAt >= loaded && good.config.reloadError === undefined, JSON.stringify(good.config));
    writeConfig(config({ every: '15' }));
    serving.child.kill('SIGHUP');
    const refused = await waitFor('the bad configuration is refused', (s) => s.config.reloadError !== undefined);
    assert.match(refused.config.reloadError!, /policies\.0\.every/);
    assert.equal(refused.policies.find((p) => p.name === 'rolling')!.when, 'every 20s', 'the good configuration stays');
    await logShows(/SIGHUP: configuration .* refused, the previous one stays/);
    writeConfig(config({ every: '20s' }));

    // the VM deleted is reported gone by a minutely cycle after it (one ran during the cut)
    const gone = await waitFor(
      'old1 reported gone by minutely',
      (s) => s.policies.find((p) => p.name === 'minutely')!.gone?.includes(uuids.old1!) ?? false,
    );
    assert.equal(vmState(gone, 'minutely', 'old1'), undefined, 'a VM gone leaves the state');
    await logShows(new RegExp(`policy minutely: VM ${uuids.old1} is gone since the last cycle`));

    // SIGTERM in the middle of a stream: web1 gets 24 MB, its next cycle streams it, and the service is stopped then
    await sh(`head -c 24M /dev/urandom > /zones/${uuids.web1}/root/big.bin`);
    const stream = await waitFor(
      'a stream of web1 in flight',
      (s) => s.transfers.some((t) => t.uuid === uuids.web1 && t.bytes > 0),
      90,
    );
    const cyclesAtTerm = stream.policies.find((p) => p.name === 'rolling')!.cycles;
    const termAt = Date.now();
    serving.child.kill('SIGTERM');
    const code = await serving.exited;
    const stopSeconds = (Date.now() - termAt) / 1000;
    const log = serving.stderr();
    assert.equal(code, 0, log);
    assert.match(log, /SIGTERM: no new cycles/);
    const final = readState();
    assert.ok(final.vms.every((v) => !v.running) && final.transfers.length === 0, 'nothing left running in the state');
    assert.equal(await sh(`ls -A ${join(dir, 'lock')} 2>/dev/null || true`), '', 'no lock left behind');

    // every cycle accounted for: one log line per VM cycle, the counts in the state, the snapshots on the target
    const lines = cycleLines(log);
    for (const policy of final.policies) {
      const mine = lines.filter((l) => l.policy === policy.name);
      assert.equal(mine.length, policy.vmCycles ?? 0, `${policy.name}: one log line per VM cycle started`);
      for (const vm of final.vms.filter((v) => v.policy === policy.name)) {
        const ofVm = mine.filter((l) => l.uuid === vm.uuid);
        assert.equal(
          (vm.successesTotal ?? 0) + vm.failuresTotal,
          ofVm.length,
          `${policy.name} ${vm.alias}: successes + failures = its cycles`,
        );
        assert.equal(vm.successesTotal ?? 0, ofVm.filter((l) => l.status === 'success').length);
        const there = new Set((await snapshotsOf(`${BASE}/${vm.uuid}`)).map((s) => s.name));
        for (const l of ofVm.filter((l) => l.status === 'success'))
          assert.ok(
            there.has(l.snapshot!),
            `${policy.name} ${vm.alias}: @${l.snapshot} of a successful cycle is on the target`,
          );
      }
    }
    // no overlap: never two cycles of one VM at once, whichever policies; no lock refusal
    for (const uuid of Object.values(uuids)) {
      const spans = lines.filter((l) => l.uuid === uuid).sort((a, b) => a.from - b.from);
      for (let i = 1; i < spans.length; i += 1)
        assert.ok(
          spans[i]!.from >= spans[i - 1]!.to,
          `${uuid}: cycles overlap: ${JSON.stringify([spans[i - 1], spans[i]])}`,
        );
    }
    assert.doesNotMatch(log, /another zonecopy run/);
    const skipped = final.policies.reduce((sum, p) => sum + p.skipped, 0);

    assert.equal(
      final.policies.find((p) => p.name === 'rolling')!.cycles,
      cyclesAtTerm,
      'no cycle started after SIGTERM',
    );

    // a clean next start (the continuous policy alone): its cycle completes, incrementally from what the stopped one sent
    writeConfig({ ...config({ every: '20s' }), policies: [config({ every: '20s' }).policies[0]] });
    const nextStarted = Date.now() / 1000;
    const next = await zonecopy(['serve', '--once', '--config', configPath]);
    assert.equal(next.code, 0, next.stderr);
    const resumeTokens = await sh(`zfs get -H -r -o value receive_resume_token ${BASE}/${uuids.web1}`);
    assert.match(resumeTokens.trim(), /^-(\n-)*$/, 'no partial receive left on the target');
    const after = readState();
    assert.ok(after.vms.filter((v) => v.uuid === uuids.web1).every((v) => v.lastStatus === 'success'));
    // the newest snapshot on the target carried over from the stopped run: the lag across the restart is counted, counters start again
    const carried = vmState(final, 'rolling', 'web1')!.newestSnapshotAt!;
    const restarted = vmState(after, 'rolling', 'web1')!;
    assert.equal(restarted.successesTotal, 1);
    assert.ok(
      (restarted.rpoWorstSeconds ?? 0) >= nextStarted - carried,
      `worst RPO lag ${restarted.rpoWorstSeconds} s after a restart ${(nextStarted - carried).toFixed(1)} s past the newest snapshot`,
    );

    const minutes = (Date.now() - started) / 60_000;
    process.stdout.write(
      `# serve: ${lines.length} VM cycles (${final.policies.map((p) => `${p.name} ${p.cycles} cycles, ${p.vmCycles} VM cycles, ${p.skipped} skipped`).join('; ')}), ${skipped} skipped, ${final.connects} connections, SIGTERM to exit ${stopSeconds.toFixed(1)} s, worst RPO lag web1 ${vmState(final, 'rolling', 'web1')?.rpoWorstSeconds} s, ${minutes.toFixed(1)} min\n`,
    );
  });
});

interface CycleLine {
  policy: string;
  uuid: string;
  status: string;
  from: number;
  to: number;
  snapshot?: string;
}

/** The service log's line per VM cycle: `policy P: VM alias (uuid) status in N s (from to to), B bytes, @snapshot`. */
function cycleLines(log: string): CycleLine[] {
  const pattern =
    /policy (\S+): VM \S+ \(([0-9a-f-]{36})\) (success|partial|failed) in [\d.]+ s \((\S+) to (\S+)\), \d+ bytes(?:, @(\S+))?/g;
  return [...log.matchAll(pattern)].map((m) => ({
    policy: m[1]!,
    uuid: m[2]!,
    status: m[3]!,
    from: Date.parse(m[4]!),
    to: Date.parse(m[5]!),
    ...(m[6] !== undefined && { snapshot: m[6] }),
  }));
}

function httpGet(url: string): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    })
      .on('error', reject)
      .end();
  });
}

/** Prometheus text exposition: each sample line `name{label="value",...} number`; comments skipped. */
function parseExposition(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `not an exposition line: ${line}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]),
      );
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}
