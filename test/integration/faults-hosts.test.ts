/** Fault injection, part 2: connections, hosts, pools, concurrent and killed runs, hostile names. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  assertChainsVerify,
  assertNoLeftovers,
  backup,
  failThenRecover,
  fault,
  printFaultTable,
  setUpFaultFixture,
  waitForProcess,
} from './faults-harness.js';
import { PROJECT, run, sh, snapshotsOf, target, writeConfig } from './harness.js';

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`not ${what} within 60 s`);
}

describe('fault injection: hosts, pools and runs', () => {
  before(setUpFaultFixture);
  after(printFaultTable);

  it('the SSH connection dropped mid-transfer (backup sshd sessions killed)', async () => {
    // one moment, well into the stream (a second one, 200 ms after the receive started, ran the same checks):
    // streams cut at their start and late, on every path, are faults-streams'
    for (const delay of [1200]) {
      await sh(`head -c 6M /dev/urandom > /zones/${fault.uuid}/data/drop-${delay}.bin`);
      // mbuffer -r throttles the stream to 2 MB/s, so the drop lands mid-transfer
      const slow = writeConfig({
        transferStrategy: 'ssh_gzip',
        compressionCmd: ['mbuffer', '-q', '-r', '2M', '-m', '1M'],
        decompressionCmd: ['cat'],
      });
      await failThenRecover(async () => {
        const child = backup([], slow);
        // wait until the data set's stream is being received, then cut the connection
        await waitForProcess(`zfs receive -s -u ${target(`zones/${fault.uuid}/data`)}`);
        await new Promise((r) => setTimeout(r, delay));
        await sh('pkill -P "$(cat /etc/zonecopy-test/backup-host/sshd.pid)" || true');
        return child;
      }, /failed|closed|exited|connect/i);
    }
    fault.table.push('SSH connection dropped mid-transfer | 1 moment | pass');
  });

  it('backup host unreachable, authentication refused, unknown and changed host key: refused before any snapshot', async () => {
    const variants: Array<[Record<string, unknown>, RegExp]> = [
      // a host that is down would by default still be snapshotted here (snapshotWhenTargetsDown, targets.test)
      [{ backupDestination: '127.0.0.9', snapshotWhenTargetsDown: false }, /cannot connect to backup host/],
      [{ backupDestinationPrivateKeyPath: '/tmp/zc-wrong-key' }, /refused the SSH key/],
      [{ knownHostsPath: '/tmp/zc-empty-known-hosts' }, /is not known.*SHA256:/],
      [{ knownHostsPath: '/tmp/zc-changed-known-hosts' }, /HOST KEY CHANGED/],
    ];
    await sh(
      `rm -f /tmp/zc-wrong-key* /tmp/zc-other-host*; ssh-keygen -q -t ed25519 -N '' -f /tmp/zc-wrong-key; : > /tmp/zc-empty-known-hosts; ssh-keygen -q -t ed25519 -N '' -f /tmp/zc-other-host; echo "127.0.0.2 $(cut -d' ' -f1,2 /tmp/zc-other-host.pub)" > /tmp/zc-changed-known-hosts`,
    );
    // every refusal is checked to change nothing, so one good run after the last shows the next run completes
    const refused = async ([settings]: (typeof variants)[number]) => {
      const local = await sh(`zfs list -H -t snapshot -o name,guid -r zones/${fault.uuid}`);
      const failed = await backup([], writeConfig(settings));
      assert.equal(
        await sh(`zfs list -H -t snapshot -o name,guid -r zones/${fault.uuid}`),
        local,
        'no snapshot was taken',
      );
      return failed;
    };
    for (const variant of variants.slice(0, -1)) {
      const failed = await refused(variant);
      assert.notEqual(failed.code, 0, 'the faulty run must fail');
      assert.match(failed.stdout + failed.stderr, variant[1]);
      await assertNoLeftovers();
    }
    await failThenRecover(() => refused(variants.at(-1)!), variants.at(-1)![1]);
    fault.table.push('unreachable / auth refused / unknown key / changed key | 4 | pass');
  });

  it('the target pool full, then space freed: the next run completes', async () => {
    await sh(
      `rm -f /zones/${fault.uuid}/data/*.bin; zpool destroy -f tiny 2>/dev/null; rm -f /var/tmp/tiny.img; truncate -s 512M /var/tmp/tiny.img && zpool create -f -O mountpoint=none tiny /var/tmp/tiny.img && zfs create -o refreservation=$(( $(zfs get -Hp -o value available tiny) - 20 * 1048576 )) tiny/filler`,
    );
    const tiny = writeConfig({ backupDestinationBasePath: 'tiny/zones' });
    await sh(`head -c 40M /dev/urandom > /zones/${fault.uuid}/data/large.bin`);
    const first = await backup([], tiny);
    assert.equal(first.code, 1);
    assert.match(first.stdout + first.stderr, /space|quota|failed/i);
    await assertNoLeftovers();
    await sh('zfs destroy tiny/filler');
    const next = await backup([], tiny);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    await sh(`rm /zones/${fault.uuid}/data/large.bin; zpool destroy -f tiny; rm -f /var/tmp/tiny.img`);
    fault.table.push('target pool full | 1 | pass');
  });

  // the target modified since the last snapshot (refused naming --rollback, which completes) is transfer-rotation's:
  // its holds and series cases each change a target on the backup host, then check the failure and --rollback

  it('a snapshot destroyed on the target by hand: holds refuse it; once released and destroyed, the next run goes on from an older common one', async () => {
    // two runs: the second's snapshot carries no change, so once it is destroyed there the backup host's copy is
    // unmodified since the first (destroying a snapshot that did carry changes leaves them in the head, which a
    // receive then refuses as modified: that is the changed-target case, --rollback)
    await backup();
    await backup();
    const data = target(`zones/${fault.uuid}/data`);
    const newest = (await snapshotsOf(data)).at(-1)!.name;
    const refused = await run('zfs', ['destroy', `${data}@${newest}`]);
    assert.notEqual(refused.code, 0, 'the held newest common snapshot cannot be destroyed');
    await sh(`zfs release "zonecopy:127.0.0.2:fault" ${data}@${newest} && zfs destroy ${data}@${newest}`);
    const next = await backup();
    assert.equal(next.code, 0, next.stderr + next.stdout);
    await assertChainsVerify();
    fault.table.push('snapshot destroyed on target | 1 | pass');
  });

  // two runs of one VM at once (refused naming --wait; with --wait one after the other) is the lock's unit test
  // (test/unit/lock.test.ts, separate processes on one lock file): nothing of it is ZFS

  it('a run killed with SIGKILL holding the lock, and mid-stream: the lock is taken over and the next run completes', async () => {
    // moments by what the run is doing, not by time: in the guest, node alone takes seconds to start (kills at
    // 0.7, 2.5 and 4.5 s all landed before the run had taken its lock)
    const lock = `/var/run/zonecopy/${fault.uuid}.lock`;
    const moments: Array<[string, () => Promise<void>]> = [
      ['holding the lock', () => waitUntil(() => existsSync(lock), `${lock} taken`)],
      ['mid-stream', () => waitForProcess(`zfs receive -s -u ${target(`zones/${fault.uuid}/data`)}`)],
    ];
    for (const [moment, reached] of moments) {
      await sh(`head -c 4M /dev/urandom > /zones/${fault.uuid}/data/kill-${fault.round}.bin`);
      fault.round++;
      assert.equal(existsSync(lock), false, `${moment}: no lock before the run`);
      const child = spawn(
        `${PROJECT}/bin/zonecopy`,
        ['backup', fault.uuid, '--groupName', 'fault', '--name', `k${fault.round}`],
        { env: { ...process.env, ZONECOPY_CONFIG: fault.config.path }, stdio: 'ignore' },
      );
      const exited = new Promise((r) => child.on('exit', r));
      await reached();
      await run('pkill', ['-KILL', '-f', `dist/zonecopy.mjs backup ${fault.uuid}`]);
      await exited;
      assert.ok(existsSync(lock), `${moment}: the killed run's lock is left behind, for the next run to take over`);
      await assertNoLeftovers();
      const next = await backup();
      assert.equal(next.code, 0, `${moment}: ${next.stderr}${next.stdout}`);
      await assertChainsVerify();
    }
    fault.table.push('SIGKILL holding the lock, mid-stream | 2 moments | pass');
  });

  it('malicious names in the vmadm JSON and the config never execute anything', async () => {
    const evil = '$(touch /tmp/pwned-alias); `touch /tmp/pwned-tick` \'quote" x\ny';
    await sh(
      `echo '${JSON.stringify({ alias: evil, set_internal_metadata: { smartcopy_exclude: `zones/x; touch /tmp/pwned-exclude,${evil}` } }).replace(/'/g, `'\\''`)}' | vmadm update ${fault.uuid}`,
    );
    const dir = "/var/zonecopy/$(touch /tmp/pwned-dir) it's";
    const result = await backup(
      [],
      writeConfig({
        backupConfigurationDestinationPath: dir,
        compressionCmd: ['gzip', '-1', '$(touch /tmp/pwned-gzip)'],
        decompressionCmd: ['gunzip'],
      }),
    );
    assert.equal(result.code, 0, result.stderr + result.stdout);
    for (const f of ['/tmp/pwned-alias', '/tmp/pwned-tick', '/tmp/pwned-exclude', '/tmp/pwned-dir', '/tmp/pwned-gzip'])
      assert.equal(existsSync(f), false, f);
    assert.ok(existsSync(`${dir}/${fault.uuid}`), 'the spec directory exists under its literal name');
    const gz = await backup(
      ['--transferStrategy', 'ssh_gzip'],
      writeConfig({ compressionCmd: ['gzip', '-1', '$(touch /tmp/pwned-gzip)'], decompressionCmd: ['gunzip'] }),
    );
    assert.notEqual(gz.code, 0, 'gzip got a literal file argument it cannot open');
    assert.equal(existsSync('/tmp/pwned-gzip'), false);
    await assertNoLeftovers();
    fault.table.push('malicious names in vmadm JSON and config | 6 | pass');
  });
});
