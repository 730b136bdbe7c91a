import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HookConfigError, selectHooks, type HookInput } from '../../src/backup/hooks.js';
import type { HooksConfig } from '../../src/config/hooks-schema.js';
import { guestAgentPathInZone, guestAgentSocket } from '../../src/smartos/guest-agent-socket.js';

const ZONE = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const KVM = '3c9d1f2e-7a4b-4c5d-8e6f-0a1b2c3d4e5f';
const AGENT = ['/usr/bin/node', '/opt/zonecopy/dist/zonecopy.mjs'];
/** Danube Cloud's VMS_VM_QEMU_EXTRA_OPTS, the usual way to give a SmartOS KVM guest an agent channel. */
const QGA_OPTS =
  '-chardev socket,path=/tmp/vm.qga,server,nowait,id=qga0 -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0';

const zone = (extra: Partial<HookInput['spec']> = {}): HookInput['spec'] => ({
  uuid: ZONE,
  alias: 'db01',
  brand: 'joyent',
  zfs_filesystem: `zones/${ZONE}`,
  state: 'running',
  ...extra,
});
const kvm = (extra: Partial<HookInput['spec']> = {}): HookInput['spec'] => ({
  uuid: KVM,
  alias: 'kvm01',
  brand: 'kvm',
  zfs_filesystem: `zones/${KVM}`,
  zonepath: `/zones/${KVM}`,
  state: 'running',
  ...extra,
});
const select = (config: HooksConfig | undefined, spec: HookInput['spec'], group = 'daily') =>
  selectHooks({ config, group, spec, snapshot: 'daily-x', agentCommand: AGENT });

describe('hook selection', () => {
  it('a VM without hooks in the config or its metadata has none', () => {
    assert.equal(select(undefined, zone()), undefined);
    assert.equal(select({ vms: { [KVM]: { global: { pre: 'true' } } } }, zone()), undefined);
  });

  it('vms.<uuid> wins over groups.<group>, which wins over the top level, key by key', () => {
    const config: HooksConfig = {
      timeoutSeconds: 10,
      onPreFailure: 'fail',
      global: { pre: 'top-pre', post: 'top-post' },
      groups: {
        daily: { timeoutSeconds: 20, global: { pre: 'daily-pre' } },
        hourly: { onPreFailure: 'crash-consistent' },
      },
      vms: { [ZONE]: { timeoutSeconds: 5 } },
    };
    const daily = select(config, zone())!;
    assert.deepEqual(
      daily.pre.map((h) => [h.command, h.timeoutSeconds, h.source]),
      [['daily-pre', 5, 'hooks.groups.daily.global.pre']],
    );
    assert.equal(daily.post.length, 0, 'the group replaced the pair, so no post hook is left');
    assert.equal(daily.onPreFailure, 'fail');
    const hourly = select(config, zone({ uuid: '11111111-2222-4333-8444-555555555555' }), 'hourly')!;
    assert.deepEqual(
      [hourly.pre[0]!.command, hourly.post[0]!.command, hourly.pre[0]!.timeoutSeconds, hourly.onPreFailure],
      ['top-pre', 'top-post', 10, 'crash-consistent'],
    );
  });

  it('defaults: 30 s per hook, and a failing pre hook goes on crash-consistent', () => {
    const plan = select({ zone: { pre: 'x' } }, zone())!;
    assert.deepEqual([plan.pre[0]!.timeoutSeconds, plan.onPreFailure], [30, 'crash-consistent']);
  });

  it('pre hooks run global, zone, freeze; post hooks in the reverse order', () => {
    const config: HooksConfig = {
      global: { pre: 'g1', post: 'g2' },
      zone: { pre: 'z1', post: 'z2' },
      guestAgent: true,
    };
    const z = select(config, zone())!;
    assert.deepEqual(
      z.pre.map((h) => h.kind),
      ['global', 'zone'],
    );
    assert.deepEqual(
      z.post.map((h) => h.kind),
      ['zone', 'global'],
    );
    const k = select(config, kvm({ qemu_extra_opts: QGA_OPTS }))!;
    assert.deepEqual(
      k.pre.map((h) => h.kind),
      ['global', 'guest-agent'],
      'no zone hook for a KVM guest',
    );
    assert.deepEqual(
      k.post.map((h) => h.kind),
      ['guest-agent', 'global'],
    );
  });

  it('an in-zone command is one argv element after the zone name, whatever it contains', () => {
    const hostile = `echo 'a;b' "$(id)" \`id\`; touch /tmp/x\nrm -rf / #`;
    const plan = select(
      undefined,
      zone({ internal_metadata: { zonecopy_pre_snapshot: hostile, zonecopy_post_snapshot: 'echo done' } }),
    )!;
    assert.deepEqual(plan.pre[0]!.argv, ['zlogin', ZONE, hostile]);
    assert.deepEqual(plan.post[0]!.argv, ['zlogin', ZONE, 'echo done']);
    assert.equal(plan.pre[0]!.source, 'internal_metadata.zonecopy_pre_snapshot');
  });

  it("the VM's internal_metadata replaces the config's in-zone pair", () => {
    const plan = select(
      { zone: { pre: 'config-pre', post: 'config-post' } },
      zone({ internal_metadata: { zonecopy_pre_snapshot: 'own-pre' } }),
    )!;
    assert.deepEqual([plan.pre.map((h) => h.command), plan.post.map((h) => h.command)], [['own-pre'], []]);
  });

  it('a global command gets the uuid and alias as environment values, never as shell text', () => {
    const alias = `$(touch /tmp/pwned)'"; id`;
    const plan = select({ global: { pre: 'printf %s "$ZONECOPY_VM_ALIAS"' } }, zone({ alias }))!;
    assert.deepEqual(plan.pre[0]!.argv, [
      'env',
      `ZONECOPY_VM_UUID=${ZONE}`,
      `ZONECOPY_VM_ALIAS=${alias}`,
      'ZONECOPY_VM_BRAND=joyent',
      'ZONECOPY_SNAPSHOT=daily-x',
      'ZONECOPY_HOOK=pre',
      '/bin/sh',
      '-c',
      'printf %s "$ZONECOPY_VM_ALIAS"',
    ]);
  });

  it('refuses in-zone metadata on a KVM VM, naming the VM, the key and what to do', () => {
    assert.throws(
      () => select(undefined, kvm({ internal_metadata: { zonecopy_post_snapshot: 'sync' } })),
      (e: Error) =>
        e instanceof HookConfigError &&
        e.message.includes(KVM) &&
        e.message.includes('zonecopy_post_snapshot') &&
        /remove_internal_metadata/.test(e.message) &&
        /hooks\.guestAgent/.test(e.message),
    );
  });

  it('refuses metadata that is not a non-empty string', () => {
    for (const value of [42, '  ', { cmd: 'x' }]) {
      assert.throws(
        () => select(undefined, zone({ internal_metadata: { zonecopy_pre_snapshot: value } })),
        (e: Error) => e instanceof HookConfigError && /must be a command line/.test(e.message),
      );
    }
  });

  it('a stopped zone gets no in-zone hooks (nothing to log in to, files at rest), with a note', () => {
    const plan = select({ zone: { pre: 'z' }, global: { pre: 'g' } }, zone({ state: 'stopped' }))!;
    assert.deepEqual(
      plan.pre.map((h) => h.kind),
      ['global'],
    );
    assert.match(plan.notes.join(), /zone is stopped/);
  });

  it('freezes a KVM guest only with guestAgent and an agent socket, found under the zone root', () => {
    const plan = select({ guestAgent: true }, kvm({ qemu_extra_opts: QGA_OPTS }))!;
    assert.deepEqual(plan.pre[0]!.argv, [
      ...AGENT,
      'guest-agent',
      `/zones/${KVM}/root/tmp/vm.qga`,
      'guest-fsfreeze-freeze',
    ]);
    assert.deepEqual(plan.post[0]!.argv, [
      ...AGENT,
      'guest-agent',
      `/zones/${KVM}/root/tmp/vm.qga`,
      'guest-fsfreeze-thaw',
    ]);
    assert.equal(select({}, kvm({ qemu_extra_opts: QGA_OPTS })), undefined, 'guestAgent is off by default');
    const none = select({ guestAgent: true }, kvm())!;
    assert.deepEqual(none.pre, []);
    assert.match(none.notes[0]!, /qemu_extra_opts configures no org\.qemu\.guest_agent\.0 socket/);
    const bhyve = select({ guestAgent: true }, kvm({ brand: 'bhyve', qemu_extra_opts: QGA_OPTS }))!;
    assert.deepEqual(bhyve.pre, []);
    assert.match(bhyve.notes[0]!, /is for KVM/);
  });

  it('reads the agent socket from qemu_extra_opts only when a virtserialport named org.qemu.guest_agent.0 uses that chardev', () => {
    assert.equal(guestAgentPathInZone(QGA_OPTS), '/tmp/vm.qga');
    assert.equal(guestAgentPathInZone(QGA_OPTS.replace('chardev=qga0', 'chardev=other')), undefined);
    assert.equal(guestAgentPathInZone(QGA_OPTS.replace('org.qemu.guest_agent.0', 'com.redhat.spice.0')), undefined);
    assert.equal(
      guestAgentPathInZone(
        '-device virtserialport,name=org.qemu.guest_agent.0,chardev=c -chardev socket,id=c,path=/x/a.sock,server=on',
      ),
      '/x/a.sock',
    );
    assert.equal(
      guestAgentSocket({ zfs_filesystem: `zones/${KVM}`, qemu_extra_opts: QGA_OPTS }),
      `/zones/${KVM}/root/tmp/vm.qga`,
    );
  });
});
