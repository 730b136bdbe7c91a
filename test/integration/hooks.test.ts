/**
 * Hooks around the snapshot (issue 22), against real OpenZFS: in-zone commands through the zlogin
 * stand-in (chrooted in the zone root), global commands, a KVM freeze through the guest-agent
 * stand-in, and a writer whose records the pre hook keeps whole. One OS zone, one tiny KVM VM.
 * A failed snapshot and --dry-run are proven with real processes in test/unit/hooks-run.test.ts
 * and hooks-config.test.ts, which cost no guest time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { PROJECT, resetHosts, run, sh, writeConfig, zonecopy, type TestConfig } from './harness.js';

const KVM = '9e1c0a4d-3b2f-4c6e-8d7a-5f4e3d2c1b0a';
const QGA_OPTS =
  '-chardev socket,path=/tmp/vm.qga,server,nowait,id=qga0 -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0';

interface Report {
  results: Array<{
    status: string;
    errors: string[];
    consistency?: {
      consistency: string;
      hooks: Array<{ phase: string; kind: string; result: string; error?: string }>;
      notes: string[];
    };
  }>;
}

async function vmadm(args: string[], input?: unknown): Promise<void> {
  const result = await run('vmadm', args, input === undefined ? {} : { input: JSON.stringify(input) });
  assert.equal(result.code, 0, `vmadm ${args.join(' ')}: ${result.stderr}`);
}

const setMetadata = (uuid: string, metadata: Record<string, string>) =>
  vmadm(['update', uuid], { set_internal_metadata: metadata });

describe('hooks around the snapshot', () => {
  let uuid: string;
  let root: string;
  let config: TestConfig;
  let events: string;
  let writer: ChildProcess | undefined;
  let agent: ChildProcess | undefined;

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent']);
    uuid = await fixtureUuid('joyent');
    root = `/zones/${uuid}/root`;
    // the zone's userland for the zlogin stand-in's chroot: the guest's /usr, read-only, and the merged-/usr links
    await sh(
      `for l in bin lib lib64 sbin; do [ -L /$l ] && [ ! -e ${root}/$l ] && ln -s "$(readlink /$l)" ${root}/$l; done; mkdir -p ${root}/usr ${root}/tmp ${root}/var/db && mount --bind /usr ${root}/usr && mount -o remount,ro,bind ${root}/usr`,
    );
    await vmadm(['create'], {
      uuid: KVM,
      brand: 'kvm',
      alias: 'qga01',
      ram: 256,
      disks: [{ size: 8, model: 'virtio', boot: true }],
    });
    await vmadm(['update', KVM, `qemu_extra_opts=${QGA_OPTS}`]);
    config = writeConfig();
    events = join(config.logDirectory, '..', 'events');
    const snapshotSeen = (phase: string) =>
      `if zfs list -H -o name "zones/$ZONECOPY_VM_UUID@$ZONECOPY_SNAPSHOT" >/dev/null 2>&1; then s=taken; else s=absent; fi; echo "global-${phase} $ZONECOPY_VM_ALIAS snapshot $s" >> ${events}`;
    config = writeConfig({
      hooks: {
        timeoutSeconds: 5,
        global: { pre: snapshotSeen('pre'), post: snapshotSeen('post') },
        groups: { strict: { onPreFailure: 'fail', timeoutSeconds: 2 } },
        vms: { [KVM]: { guestAgent: true } },
      },
    });
  });

  after(async () => {
    writer?.kill('SIGKILL');
    agent?.kill();
    await run('bash', ['-c', `umount ${root}/usr; umount /zones/${uuid}/.zfs/snapshot/* 2>/dev/null; true`]);
  });

  it('pre hook, snapshot, post hook in that order, and a writer paused by the pre hook leaves no torn record', async () => {
    // each record is BEGIN n … END n; unpaused, the journal always ends inside a record
    const journal = `${root}/var/db/journal`;
    writer = spawn(
      'bash',
      [
        '-c',
        `cd ${root}/var/db; rm -f pause paused; n=0; printf 'BEGIN 0 ' > journal; while :; do if [ -e pause ]; then printf 'END %d\\n' $n >> journal; touch paused; while [ -e pause ]; do sleep 0.02; done; rm -f paused; n=$((n+1)); printf 'BEGIN %d ' $n >> journal; else printf 'END %d\\nBEGIN %d ' $n $((n+1)) >> journal; n=$((n+1)); sleep 0.05; fi; done`,
      ],
      { stdio: 'ignore' },
    );
    await sh(`for i in $(seq 100); do [ -s ${journal} ] && break; sleep 0.05; done`);
    // the control: a snapshot without the hook catches a record half written
    await sh(`zfs snapshot zones/${uuid}@control`);
    const control = readFileSync(`/zones/${uuid}/.zfs/snapshot/control/root/var/db/journal`, 'utf8');
    assert.match(control, /BEGIN \d+ $/, 'without the hook the snapshot has a torn last record');
    await setMetadata(uuid, {
      zonecopy_pre_snapshot:
        'touch /var/db/pause; i=0; while [ ! -e /var/db/paused ]; do sleep 0.05; i=$((i+1)); [ $i -lt 100 ] || exit 1; done; echo zone-pre >> /var/db/hooks',
      zonecopy_post_snapshot: 'rm -f /var/db/pause; echo zone-post >> /var/db/hooks',
    });
    const backup = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'first', '--json'], config);
    assert.equal(backup.code, 0, backup.stderr + backup.stdout);
    const result = (JSON.parse(backup.stdout) as Report).results[0]!;
    assert.equal(result.consistency?.consistency, 'application');
    assert.deepEqual(
      result.consistency?.hooks.map((h) => `${h.phase} ${h.kind} ${h.result}`),
      ['pre global ok', 'pre zone ok', 'post zone ok', 'post global ok'],
    );
    assert.deepEqual(readFileSync(events, 'utf8').trim().split('\n'), [
      'global-pre db01 snapshot absent',
      'global-post db01 snapshot taken',
    ]);
    assert.equal(readFileSync(`${root}/var/db/hooks`, 'utf8'), 'zone-pre\nzone-post\n');
    const snapped = readFileSync(`/zones/${uuid}/.zfs/snapshot/daily-first/root/var/db/journal`, 'utf8');
    assert.match(
      snapped,
      /^(BEGIN (\d+) END \2\n)+$/,
      `no torn record in the hooked snapshot: ...${snapped.slice(-60)}`,
    );
    const later = readFileSync(journal, 'utf8');
    assert.ok(later.length > snapped.length, 'the writer went on after the post hook');
    writer.kill('SIGKILL');
    writer = undefined;
    const status = await zonecopy(['status', uuid], config);
    assert.match(status.stdout, /newest backup set daily-first: application-consistent \(pre global ok/);
  });

  it('a pre hook that hangs, with onPreFailure "fail" (group strict): killed at its timeout, nothing snapshotted, the post hook ran', async () => {
    await setMetadata(uuid, {
      zonecopy_pre_snapshot: 'sleep 600',
      zonecopy_post_snapshot: 'touch /var/db/strict-post',
    });
    const started = Date.now();
    const backup = await zonecopy(['backup', uuid, '--groupName', 'strict', '--json'], config);
    assert.equal(backup.code, 1, backup.stdout);
    assert.ok(Date.now() - started < 30_000);
    const result = (JSON.parse(backup.stdout) as Report).results[0]!;
    assert.match(
      result.errors.join('\n'),
      /pre zone hook \(internal_metadata\.zonecopy_pre_snapshot\) timed out: did not finish within 2 s.*nothing was snapshotted/,
    );
    assert.equal((await sh(`zfs list -H -t snapshot -o name -r zones/${uuid} | grep -c @strict- || true`)).trim(), '0');
    assert.equal(existsSync(`${root}/var/db/strict-post`), true);
    assert.equal((await run('pgrep', ['-f', 'sleep 600'])).code, 1, "the hook's sleep inside the zone is gone");
  });

  it('a failing pre hook with the default "crash-consistent": backed up anyway, said so, hostile metadata ran once in the zone only', async () => {
    const hostile = `printf '%s|' 'a;b' "$(echo c)" 'd'"'"'e' > /var/db/hostile; touch /var/db/ran-in-zone #\necho second line >> /var/db/hostile; exit 3`;
    await setMetadata(uuid, { zonecopy_pre_snapshot: hostile, zonecopy_post_snapshot: 'touch /var/db/crash-post' });
    const backup = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'second'], config);
    assert.equal(backup.code, 0, backup.stderr + backup.stdout);
    assert.match(backup.stdout, /consistency: crash-consistent \(pre global ok [\d.]+ s, pre zone failed/);
    assert.match(backup.stdout, /went on per onPreFailure "crash-consistent"/);
    assert.equal(readFileSync(`${root}/var/db/hostile`, 'utf8'), `a;b|c|d'e|second line\n`);
    assert.equal(existsSync(`${root}/var/db/ran-in-zone`), true);
    assert.equal(existsSync('/var/db/ran-in-zone'), false, 'nothing of it ran in the global zone');
    assert.equal(existsSync(`${root}/var/db/crash-post`), true);
    const list = await zonecopy(['restore', uuid, '--list'], config);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /\n {2}daily-second {2}crash-consistent \(pre global ok [^\n]*pre zone failed[^\n]*\n(?: {6}[^\n]*\n)* {2}daily-first {2}application-consistent/,
    );
  });

  it('KVM: the guest is frozen through its agent socket for the snapshot and thawed after', async () => {
    await sh(`mkdir -p /zones/${KVM}/root/tmp`);
    const log = join(config.logDirectory, '..', 'agent.log');
    agent = spawn(
      'node',
      [
        `${PROJECT}/build/test/sim/guest-agent.js`,
        `/zones/${KVM}/root/tmp/vm.qga`,
        '--log',
        log,
        '--watch',
        `zones/${KVM}-disk0`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => agent!.stdout!.once('data', resolve));
    const backup = await zonecopy(['backup', KVM, '--groupName', 'daily', '--name', 'kvm', '--json'], config);
    assert.equal(backup.code, 0, backup.stderr + backup.stdout);
    const result = (JSON.parse(backup.stdout) as Report).results[0]!;
    assert.deepEqual(
      result.consistency?.hooks.map((h) => `${h.phase} ${h.kind} ${h.result}`),
      ['pre global ok', 'pre guest-agent ok', 'post guest-agent ok', 'post global ok'],
    );
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      'guest-sync snapshots=0',
      'guest-fsfreeze-freeze snapshots=0',
      'guest-sync snapshots=1',
      'guest-fsfreeze-thaw snapshots=1',
    ]);
  });
});
