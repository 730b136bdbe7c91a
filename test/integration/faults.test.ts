/**
 * Fault injection on real ZFS. Every case: non-zero exit, a report naming the failure, nothing
 * lost on either side, no process left behind, and the next run completes with both chains
 * verifying by guid.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { PROJECT, resetHosts, run, sh, snapshotsOf, target, writeConfig, zonecopy, type Run, type TestConfig } from './harness.js';

const table: string[] = [];
let uuid: string;
let datasets: string[];
let config: TestConfig;
let round = 0;

/** Source and target agree: the target's newest snapshot is a source snapshot with the same guid. */
async function assertChainsVerify(): Promise<void> {
  for (const dataset of datasets) {
    const source = await snapshotsOf(dataset);
    const received = await snapshotsOf(target(dataset));
    const newest = received[received.length - 1];
    assert.ok(newest, `${target(dataset)} has no snapshots`);
    assert.equal(source.find((s) => s.name === newest.name)?.guid, newest.guid, `${dataset}: ${newest.name} guid differs`);
    assert.equal((await sh(`zfs get -H -o value receive_resume_token ${target(dataset)}`)).trim(), '-', `${target(dataset)} still has a resume token`);
  }
}

/**
 * Waits until a process whose command line matches `pattern` runs (pgrep itself, not a shell
 * around it: a shell's command line would contain the pattern and match at once).
 */
async function waitForProcess(pattern: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await run('pgrep', ['-f', pattern])).code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`no process matching ${pattern} within 60 s`);
}

/** Starts the backup host's copy over: holds released, targets destroyed. */
async function dropTargets(): Promise<void> {
  const root = target(`zones/${uuid}`);
  await sh(`zfs list -H -r -t snapshot -o name ${root} 2>/dev/null | xargs -r zfs holds -H | while IFS="$(printf '\\t')" read -r snap tag _; do zfs release "$tag" "$snap"; done; zfs destroy -r ${root} 2>/dev/null; true`);
}

async function assertNoLeftovers(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const left = (await sh(`pgrep -a -f '^(mbuffer|zfs send|zfs receive|zfs recv)' || true`)).trim();
    if (!left) return;
    await new Promise((r) => setTimeout(r, 250));
    if (i === 19) assert.fail(`processes left behind: ${left}`);
  }
}

async function backup(extra: string[] = [], cfg = config): Promise<Run> {
  round++;
  return zonecopy(['backup', uuid, '--groupName', 'fault', '--name', `r${round}`, ...extra], cfg);
}

/** A failed run, then a good one; the invariants checked in between and after. */
async function failThenRecover(failing: () => Promise<Run>, expect: RegExp, recover: () => Promise<Run> = () => backup()): Promise<void> {
  const snapshotsBefore = await Promise.all(datasets.map((d) => snapshotsOf(target(d))));
  const failed = await failing();
  assert.notEqual(failed.code, 0, 'the faulty run must fail');
  assert.match(failed.stdout + failed.stderr, expect);
  await assertNoLeftovers();
  // nothing lost on the backup host: every snapshot it had is still there with its guid
  for (const [i, d] of datasets.entries()) {
    const now = await snapshotsOf(target(d));
    for (const s of snapshotsBefore[i]!) assert.ok(now.some((n) => n.name === s.name && n.guid === s.guid), `${target(d)}@${s.name} was lost`);
  }
  const next = await recover();
  assert.equal(next.code, 0, `the next run must complete: ${next.stderr}${next.stdout}`);
  await assertNoLeftovers();
  await assertChainsVerify();
}

describe('fault injection', () => {
  before(async () => {
    await resetHosts();
    await createFixtures(['joyent']);
    uuid = await fixtureUuid('joyent');
    datasets = [`zones/${uuid}`, `zones/${uuid}/data`];
    config = writeConfig();
    await sh(`head -c 3M /dev/urandom > /zones/${uuid}/data/big.bin`);
  });

  after(() => {
    process.stdout.write(`# fault table:\n${table.map((l) => `#   ${l}`).join('\n')}\n`);
  });

  // 14 different offsets with ssh_gzip (7 into full streams, 7 into incremental ones), 4 with mbuffer
  const fullCuts = [0, 100, 4096, 65536, 200000, 1000000, 2500000];
  const incrementalCuts = [1, 312, 10000, 150000, 600000, 1500000, 2800000];
  it(`ssh_gzip: the stream cut at ${fullCuts.length} offsets of the full stream, then resumed or restarted`, async () => {
    // the first backup of the data set is full; cut it, then let each next run go on from the token
    for (const cut of fullCuts) {
      await dropTargets();
      const cutter = writeConfig({ transferStrategy: 'ssh_gzip', compressionCmd: ['head', '-c', String(cut)], decompressionCmd: ['cat'] });
      await failThenRecover(() => backup([], cutter), /failed/);
    }
    table.push(`stream cut, full send, ssh_gzip | ${fullCuts.length} offsets | pass`);
  });

  it(`ssh_gzip: the stream cut at ${incrementalCuts.length} offsets of incremental streams`, async () => {
    for (const cut of incrementalCuts) {
      await sh(`head -c 3M /dev/urandom > /zones/${uuid}/data/inc-${cut}.bin`);
      const cutter = writeConfig({ transferStrategy: 'ssh_gzip', compressionCmd: ['head', '-c', String(cut)], decompressionCmd: ['cat'] });
      await failThenRecover(() => backup([], cutter), /failed/);
    }
    table.push(`stream cut, incremental, ssh_gzip | ${incrementalCuts.length} offsets | pass`);
  });

  it('ssh: the stream cut at 4 offsets on its way into the OpenSSH bulk connection', async () => {
    // full sends take the OpenSSH path (small incrementals go over the ssh2 channel, cut above with ssh_gzip)
    for (const cut of [0, 70000, 900000, 2200000]) {
      await dropTargets();
      const dir = `/tmp/ssh-cut-${cut}`;
      await sh(`mkdir -p ${dir}`);
      writeFileSync(`${dir}/ssh`, `#!/bin/sh\nhead -c ${cut} | /usr/bin/ssh "$@"\n`);
      chmodSync(`${dir}/ssh`, 0o755);
      await failThenRecover(
        () => run(`${PROJECT}/bin/zonecopy`, ['backup', uuid, '--groupName', 'fault', '--name', `r${++round}`], { env: { ZONECOPY_CONFIG: config.path, PATH: `${dir}:${process.env.PATH}` } }),
        /failed/,
      );
    }
    table.push('stream cut, ssh over the OpenSSH bulk connection (full sends) | 4 offsets | pass');
  });

  it('mbuffer and mbuffer_gzip: the receiving side cut at several offsets', async () => {
    const offsets = [0, 5000, 300000, 1500000];
    for (const strategy of ['mbuffer', 'mbuffer_gzip']) {
      for (const cut of offsets) {
        await sh(`head -c 2M /dev/urandom > /zones/${uuid}/data/mb-${strategy}-${cut}.bin`);
        const wrapper = `/tmp/mbuffer-cut-${cut}`;
        writeFileSync(wrapper, `#!/bin/sh\nmbuffer "$@" | head -c ${cut}\n`);
        chmodSync(wrapper, 0o755);
        const cutter = writeConfig({ transferStrategy: strategy, mBufferRemotePath: wrapper, compressionCmd: ['gzip', '-1'], decompressionCmd: ['gunzip'] });
        await failThenRecover(() => backup([], cutter), /failed/, () => backup(['--transferStrategy', strategy]));
      }
    }
    table.push(`stream cut, mbuffer + mbuffer_gzip | ${offsets.length * 2} offsets | pass`);
  });

  it('the SSH connection dropped mid-transfer (backup sshd sessions killed)', async () => {
    for (const delay of [200, 1200]) {
      await sh(`head -c 6M /dev/urandom > /zones/${uuid}/data/drop-${delay}.bin`);
      // mbuffer -r throttles the stream to 2 MB/s, so the drop lands mid-transfer
      const slow = writeConfig({ transferStrategy: 'ssh_gzip', compressionCmd: ['mbuffer', '-q', '-r', '2M', '-m', '1M'], decompressionCmd: ['cat'] });
      await failThenRecover(async () => {
        const child = backup([], slow);
        // wait until the data set's stream is being received, then cut the connection
        await waitForProcess(`zfs receive -s -u ${target(`zones/${uuid}/data`)}`);
        await new Promise((r) => setTimeout(r, delay));
        await sh('pkill -P "$(cat /etc/zonecopy-test/backup-host/sshd.pid)" || true');
        return child;
      }, /failed|closed|exited|connect/i);
    }
    table.push('SSH connection dropped mid-transfer | 2 moments | pass');
  });

  it('backup host unreachable, authentication refused, unknown and changed host key: refused before any snapshot', async () => {
    const variants: Array<[Record<string, unknown>, RegExp]> = [
      [{ backupDestination: '127.0.0.9' }, /cannot connect to backup host/],
      [{ backupDestinationPrivateKeyPath: '/tmp/zc-wrong-key' }, /refused the SSH key/],
      [{ knownHostsPath: '/tmp/zc-empty-known-hosts' }, /is not known.*SHA256:/],
      [{ knownHostsPath: '/tmp/zc-changed-known-hosts' }, /HOST KEY CHANGED/],
    ];
    await sh(`rm -f /tmp/zc-wrong-key* /tmp/zc-other-host*; ssh-keygen -q -t ed25519 -N '' -f /tmp/zc-wrong-key; : > /tmp/zc-empty-known-hosts; ssh-keygen -q -t ed25519 -N '' -f /tmp/zc-other-host; echo "127.0.0.2 $(cut -d' ' -f1,2 /tmp/zc-other-host.pub)" > /tmp/zc-changed-known-hosts`);
    for (const [settings, message] of variants) {
      const local = await sh(`zfs list -H -t snapshot -o name,guid -r zones/${uuid}`);
      await failThenRecover(async () => {
        const failed = await backup([], writeConfig(settings));
        assert.equal(await sh(`zfs list -H -t snapshot -o name,guid -r zones/${uuid}`), local, 'no snapshot was taken');
        return failed;
      }, message);
    }
    table.push('unreachable / auth refused / unknown key / changed key | 4 | pass');
  });

  it('the target pool full, then space freed: the next run completes', async () => {
    await sh(`rm -f /zones/${uuid}/data/*.bin; zpool destroy -f tiny 2>/dev/null; rm -f /var/tmp/tiny.img; truncate -s 512M /var/tmp/tiny.img && zpool create -f -O mountpoint=none tiny /var/tmp/tiny.img && zfs create -o refreservation=$(( $(zfs get -Hp -o value available tiny) - 20 * 1048576 )) tiny/filler`);
    const tiny = writeConfig({ backupDestinationBasePath: 'tiny/zones' });
    await sh(`head -c 40M /dev/urandom > /zones/${uuid}/data/large.bin`);
    const first = await backup([], tiny);
    assert.equal(first.code, 1);
    assert.match(first.stdout + first.stderr, /space|quota|failed/i);
    await assertNoLeftovers();
    await sh('zfs destroy tiny/filler');
    const next = await backup([], tiny);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    await sh(`rm /zones/${uuid}/data/large.bin; zpool destroy -f tiny; rm -f /var/tmp/tiny.img`);
    table.push('target pool full | 1 | pass');
  });

  it('the target modified since the last snapshot: a clear error naming --rollback, which then completes', async () => {
    await backup();
    const data = target(`zones/${uuid}/data`);
    await sh(`zfs set mountpoint=/mnt/modified ${data} && zfs mount ${data} && echo changed > /mnt/modified/changed.txt && zfs umount ${data} && zfs inherit mountpoint ${data}`);
    await sh(`echo more > /zones/${uuid}/data/more.txt`);
    await failThenRecover(() => backup(), new RegExp(`${data}.*--rollback`), () => backup(['--rollback']));
    table.push('target modified | 1 | pass (--rollback)');
  });

  it('a snapshot destroyed on the target by hand: holds refuse it; once released and destroyed, the next run goes on from an older common one', async () => {
    await backup();
    await backup();
    const data = target(`zones/${uuid}/data`);
    const newest = (await snapshotsOf(data)).at(-1)!.name;
    const refused = await run('zfs', ['destroy', `${data}@${newest}`]);
    assert.notEqual(refused.code, 0, 'the held newest common snapshot cannot be destroyed');
    await sh(`zfs release "zonecopy:127.0.0.2:fault" ${data}@${newest} && zfs destroy ${data}@${newest}`);
    const next = await backup();
    assert.equal(next.code, 0, next.stderr + next.stdout);
    await assertChainsVerify();
    table.push('snapshot destroyed on target | 1 | pass');
  });

  it('two runs of one VM at once: the second refuses with a clear message, or waits with --wait', async () => {
    const [a, b] = await Promise.all([backup(), (async () => { await new Promise((r) => setTimeout(r, 1500)); return backup(); })()]);
    const codes = [a.code, b.code].sort();
    assert.deepEqual(codes, [0, 1]);
    assert.match([a, b].find((r) => r.code === 1)!.stdout + [a, b].find((r) => r.code === 1)!.stderr, /another zonecopy run .* is backing up VM/);
    const [c, d] = await Promise.all([backup(['--wait']), (async () => { await new Promise((r) => setTimeout(r, 1500)); return backup(['--wait']); })()]);
    assert.deepEqual([c.code, d.code], [0, 0]);
    await assertChainsVerify();
    table.push('two runs at once | 2 (refuse, --wait) | pass');
  });

  it('a run killed with SIGKILL at several moments: the lock is taken over and the next run completes', async () => {
    for (const delay of [700, 2500, 4500]) {
      await sh(`head -c 4M /dev/urandom > /zones/${uuid}/data/kill-${delay}.bin`);
      round++;
      const child = spawn(`${PROJECT}/bin/zonecopy`, ['backup', uuid, '--groupName', 'fault', '--name', `k${round}`], { env: { ...process.env, ZONECOPY_CONFIG: config.path }, stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      await new Promise((r) => setTimeout(r, delay));
      await run('pkill', ['-KILL', '-f', `dist/zonecopy.mjs backup ${uuid}`]);
      await exited;
      await assertNoLeftovers();
      const next = await backup();
      assert.equal(next.code, 0, next.stderr + next.stdout);
      await assertChainsVerify();
    }
    table.push('SIGKILL at a random moment | 3 moments | pass');
  });

  it('malicious names in the vmadm JSON and the config never execute anything', async () => {
    const evil = '$(touch /tmp/pwned-alias); `touch /tmp/pwned-tick` \'quote" x\ny';
    await sh(`echo '${JSON.stringify({ alias: evil, set_internal_metadata: { smartcopy_exclude: `zones/x; touch /tmp/pwned-exclude,${evil}` } }).replace(/'/g, `'\\''`)}' | vmadm update ${uuid}`);
    const dir = '/var/zonecopy/$(touch /tmp/pwned-dir) it\'s';
    const result = await backup([], writeConfig({ backupConfigurationDestinationPath: dir, compressionCmd: ['gzip', '-1', '$(touch /tmp/pwned-gzip)'], decompressionCmd: ['gunzip'] }));
    assert.equal(result.code, 0, result.stderr + result.stdout);
    for (const f of ['/tmp/pwned-alias', '/tmp/pwned-tick', '/tmp/pwned-exclude', '/tmp/pwned-dir', '/tmp/pwned-gzip']) assert.equal(existsSync(f), false, f);
    assert.ok(existsSync(`${dir}/${uuid}`), 'the spec directory exists under its literal name');
    const gz = await backup(['--transferStrategy', 'ssh_gzip'], writeConfig({ compressionCmd: ['gzip', '-1', '$(touch /tmp/pwned-gzip)'], decompressionCmd: ['gunzip'] }));
    assert.notEqual(gz.code, 0, 'gzip got a literal file argument it cannot open');
    assert.equal(existsSync('/tmp/pwned-gzip'), false);
    await assertNoLeftovers();
    table.push('malicious names in vmadm JSON and config | 6 | pass');
  });
});
