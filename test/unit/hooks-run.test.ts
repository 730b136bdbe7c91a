import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { emptyRecord, HookFailedError, snapshotWithHooks, type ConsistencyRecord } from '../../src/backup/hook-run.js';
import { selectHooks, type HookPlan } from '../../src/backup/hooks.js';
import type { HooksConfig } from '../../src/config/hooks-schema.js';
import { LocalHost } from '../../src/host/local.js';
import { silentLog } from '../../src/log.js';
import { consistencyLines } from '../../src/report/render.js';
import { guestAgentCommand } from '../../src/smartos/guest-agent.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-hooks-');
const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const CLI = [process.execPath, fileURLToPath(new URL('../../src/cli/run.js', import.meta.url))];
const AGENT_STAND_IN = fileURLToPath(new URL('../sim/guest-agent.js', import.meta.url));

/** A `zlogin` on PATH that runs its arguments as the real one does (joined, one `sh -c`), in a directory standing for the zone, and keeps its argv. */
function fakeZlogin(dir: string): void {
  const script = `#!/bin/sh\nzone=$1; shift\nprintf '%s\\n' "$#" > ${dir}/zlogin-argc\ncd ${dir}/zone && exec /bin/sh -c "$* "\n`;
  writeFileSync(join(dir, 'zlogin'), script);
  chmodSync(join(dir, 'zlogin'), 0o755);
}

function plan(dir: string, config: HooksConfig, spec: Record<string, unknown> = {}): HookPlan {
  return selectHooks({
    config,
    group: 'daily',
    spec: { uuid: UUID, alias: 'db01', brand: 'joyent', zfs_filesystem: `zones/${UUID}`, state: 'running', ...spec },
    snapshot: 'daily-x',
    agentCommand: CLI,
  })!;
}

async function around(
  hooks: HookPlan,
  snapshot: () => Promise<void>,
  host = new LocalHost(false),
  state = 'running',
): Promise<{ record: ConsistencyRecord; errors: string[]; thrown?: Error }> {
  const record = emptyRecord(state);
  const errors: string[] = [];
  try {
    await snapshotWithHooks(hooks, { record, errors }, { local: host, log: silentLog }, snapshot);
    return { record, errors };
  } catch (error) {
    return { record, errors, thrown: error as Error };
  }
}

/** True once `pid` has ended (a zombie counts: this machine's init may never reap it). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    try {
      process.kill(pid, 0);
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      if (state === 'Z') return true;
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('hooks around the snapshot', () => {
  let dir: string;
  const path = process.env.PATH;
  before(() => {
    dir = scratch();
    fakeZlogin(dir);
    writeFileSync(join(dir, 'log'), '');
    spawnSync('mkdir', [join(dir, 'zone')]);
    process.env.PATH = `${dir}:${path}`;
  });
  after(() => {
    process.env.PATH = path;
  });

  it('runs pre, then the snapshot, then post; all good is application-consistent', async () => {
    const log = join(dir, 'order');
    const hooks = plan(dir, {
      global: { pre: `echo global-pre >> ${log}`, post: `echo global-post >> ${log}` },
      zone: { pre: `echo zone-pre >> ${log}`, post: `echo zone-post >> ${log}` },
    });
    const { record, thrown } = await around(hooks, async () => writeFileSync(log, 'snapshot\n', { flag: 'a' }));
    assert.equal(thrown, undefined);
    assert.deepEqual(lines(log), ['global-pre', 'zone-pre', 'snapshot', 'zone-post', 'global-post']);
    assert.equal(record.consistency, 'application');
    assert.deepEqual(
      record.hooks.map((h) => `${h.phase} ${h.kind} ${h.result}`),
      ['pre global ok', 'pre zone ok', 'post zone ok', 'post global ok'],
    );
  });

  it('runs the post hook after a snapshot that failed, and the failure still propagates', async () => {
    const log = join(dir, 'failed-snapshot');
    const hooks = plan(dir, { zone: { pre: `echo pre >> ${log}`, post: `echo post >> ${log}` } });
    const { record, thrown } = await around(hooks, async () => {
      throw new Error('zfs snapshot failed: out of space');
    });
    assert.match(thrown!.message, /out of space/);
    assert.deepEqual(lines(log), ['pre', 'post']);
    assert.equal(record.consistency, 'crash');
  });

  it('a failing pre hook with onPreFailure "fail": no snapshot, the post hook runs, the error says why and what the other mode does', async () => {
    const log = join(dir, 'fail-mode');
    const hooks = plan(dir, {
      onPreFailure: 'fail',
      global: { pre: `echo g >> ${log}; echo database refused >&2; exit 3`, post: `echo global-post >> ${log}` },
      zone: { pre: `echo zone-pre >> ${log}`, post: `echo zone-post >> ${log}` },
    });
    let snapshotted = false;
    const { record, thrown } = await around(hooks, async () => {
      snapshotted = true;
    });
    assert.ok(thrown instanceof HookFailedError);
    assert.match(
      thrown.message,
      /pre global hook \(hooks\.global\.pre\) failed: exited 3: database refused; nothing was snapshotted.*"crash-consistent" would snapshot anyway/,
    );
    assert.equal(snapshotted, false);
    assert.deepEqual(
      lines(log),
      ['g', 'global-post'],
      'the zone pre hook never started, so its post hook does not run either',
    );
    assert.equal(record.consistency, 'crash');
  });

  it('a failing pre hook with onPreFailure "crash-consistent": snapshot anyway, and the report says so', async () => {
    const log = join(dir, 'crash-mode');
    const hooks = plan(dir, { onPreFailure: 'crash-consistent', zone: { pre: 'exit 1', post: `echo post >> ${log}` } });
    let snapshotted = false;
    const { record, thrown, errors } = await around(hooks, async () => {
      snapshotted = true;
    });
    assert.equal(thrown, undefined);
    assert.equal(snapshotted, true);
    assert.deepEqual(lines(log), ['post']);
    assert.equal(record.consistency, 'crash');
    assert.deepEqual(errors, []);
    const report = consistencyLines({ consistency: record }).join('\n');
    assert.match(report, /^consistency: crash-consistent \(pre zone failed/);
    assert.match(report, /went on per onPreFailure "crash-consistent"/);
  });

  it('kills a hook that hangs at its timeout, with everything it started, and still runs the post hook', async () => {
    const pids = join(dir, 'pids');
    const log = join(dir, 'hang');
    const hooks = plan(dir, {
      timeoutSeconds: 1,
      zone: { pre: `sleep 300 & echo $! > ${pids}; trap '' INT; sleep 301`, post: `echo post >> ${log}` },
    });
    const started = Date.now();
    const { record, thrown } = await around(hooks, async () => {});
    const seconds = (Date.now() - started) / 1000;
    assert.equal(thrown, undefined);
    assert.equal(record.hooks[0]!.result, 'timed out');
    assert.match(record.hooks[0]!.error!, /did not finish within 1 s; killed with its process group/);
    assert.ok(seconds < 6, `took ${seconds} s`);
    const background = Number(readFileSync(pids, 'utf8'));
    assert.equal(await gone(background), true, 'the background sleep the hook started is gone too');
    assert.deepEqual(lines(log), ['post']);
    assert.equal(record.consistency, 'crash');
  });

  it('a stopped zone: no in-zone hook runs, the global one does, and the set counts as consistent (files at rest)', async () => {
    const log = join(dir, 'stopped');
    const hooks = plan(
      dir,
      { zone: { pre: `echo zone >> ${log}` }, global: { pre: `echo global >> ${log}` } },
      { state: 'stopped' },
    );
    const { record } = await around(hooks, async () => {}, undefined, 'stopped');
    assert.deepEqual(lines(log), ['global']);
    assert.equal(record.consistency, 'stopped');
    assert.match(record.notes.join(), /in-zone hooks \(hooks\.zone\) not run: the zone is stopped/);
  });

  it('a post hook that fails is an error of the run: the application may still be paused', async () => {
    const { errors } = await around(plan(dir, { zone: { pre: 'true', post: 'exit 4' } }), async () => {});
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /post zone hook .* failed: exited 4.*may still be paused/);
  });

  it('hostile internal_metadata reaches the zone shell once, as written, and nothing runs in the global zone', async () => {
    const marker = join(dir, 'pwned');
    const hostile = `printf '%s|' 'a;b' "$(echo c)" 'd'"'"'e' > out; echo >> out; touch ${marker}.zone #\n touch ${marker}.second-line`;
    const hooks = plan(dir, {}, { internal_metadata: { zonecopy_pre_snapshot: hostile } });
    const { record } = await around(hooks, async () => {});
    assert.equal(record.hooks[0]!.result, 'ok');
    assert.equal(readFileSync(join(dir, 'zlogin-argc'), 'utf8').trim(), '1', 'zlogin got the command as one argument');
    assert.equal(
      readFileSync(join(dir, 'zone', 'out'), 'utf8'),
      `a;b|c|d'e|\n`,
      'the zone shell saw exactly what was written, once',
    );
    assert.equal(existsSync(`${marker}.zone`), true);
    assert.equal(
      existsSync(`${marker}.second-line`),
      true,
      "a newline is the zone shell's own line break, nothing more",
    );
  });

  it('a hostile alias reaches a global hook as a value, never as shell text', async () => {
    const marker = join(dir, 'alias-pwned');
    const alias = `$(touch ${marker})\`touch ${marker}\`'"; touch ${marker}`;
    const out = join(dir, 'alias-out');
    const { record } = await around(
      plan(dir, { global: { pre: `printf %s "$ZONECOPY_VM_ALIAS" > ${out}` } }, { alias }),
      async () => {},
    );
    assert.equal(record.hooks[0]!.result, 'ok');
    assert.equal(readFileSync(out, 'utf8'), alias);
    assert.equal(existsSync(marker), false);
  });

  it('--dry-run prints each hook, quoted so that sh reads back the same argv, in order around the snapshot, and runs none', async () => {
    const printed: string[] = [];
    const host = new LocalHost(true, (line) => printed.push(line));
    const marker = join(dir, 'dry');
    const hostile = `touch ${marker}; echo '$(x)' "\`id\`"`;
    const hooks = plan(
      dir,
      { global: { pre: `touch ${marker}` } },
      { internal_metadata: { zonecopy_pre_snapshot: hostile, zonecopy_post_snapshot: `touch ${marker}` } },
    );
    const snapshot = ['zfs', 'snapshot', `zones/${UUID}@daily-x`];
    await around(
      hooks,
      async () => {
        await host.run(snapshot, { mutates: true });
      },
      host,
    );
    assert.equal(existsSync(marker), false);
    const expected = [hooks.pre[0]!.argv, ['zlogin', UUID, hostile], snapshot, ['zlogin', UUID, `touch ${marker}`]];
    assert.equal(printed.length, expected.length, printed.join('\n'));
    printed.forEach((line, i) => {
      const text = line.replace(/^\[dry-run\] local: /, '');
      const words = spawnSync('/bin/sh', ['-c', `set -- ${text}; printf '%s\\0' "$@"`], { encoding: 'utf8' })
        .stdout.split('\0')
        .slice(0, -1);
      assert.deepEqual(words, expected[i], line);
    });
  });

  describe('KVM guest agent', () => {
    const agents: ChildProcess[] = [];
    /** A stand-in agent on `<zonepath>/root/vm.qga`; returns the zonepath. */
    const startAgent = async (...options: string[]) => {
      const zonepath = scratch();
      spawnSync('mkdir', [join(zonepath, 'root')]);
      const agent = spawn(process.execPath, [AGENT_STAND_IN, join(zonepath, 'root', 'vm.qga'), ...options], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      agents.push(agent);
      await new Promise((resolve) => agent.stdout!.once('data', resolve));
      return zonepath;
    };
    const kvmHooks = (zonepath: string, timeoutSeconds = 30) =>
      selectHooks({
        config: { guestAgent: true, timeoutSeconds },
        group: 'daily',
        spec: {
          uuid: UUID,
          brand: 'kvm',
          zfs_filesystem: 'zones/x',
          zonepath,
          state: 'running',
          qemu_extra_opts:
            '-chardev socket,path=/vm.qga,server,nowait,id=qga0 -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
        },
        snapshot: 'daily-x',
        agentCommand: CLI,
      })!;
    after(() => agents.forEach((a) => a.kill()));

    it('speaks the agent protocol: freeze, status, a second freeze refused, thaw', async () => {
      const socket = join(await startAgent(), 'root', 'vm.qga');
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-freeze'), 1);
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-status'), 'frozen');
      await assert.rejects(guestAgentCommand(socket, 'guest-fsfreeze-freeze'), /has been disabled for this instance/);
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-thaw'), 1);
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-status'), 'thawed');
      await assert.rejects(
        guestAgentCommand(join(dir, 'no-such.sock'), 'guest-ping'),
        /cannot talk to the guest agent/,
      );
    });

    it('the guest is frozen during the snapshot and thawed after it, over the socket from this process', async () => {
      const zonepath = await startAgent();
      const socket = join(zonepath, 'root', 'vm.qga');
      let during: unknown;
      const { record } = await around(kvmHooks(zonepath), async () => {
        during = await guestAgentCommand(socket, 'guest-fsfreeze-status');
      });
      assert.equal(during, 'frozen');
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-status'), 'thawed');
      assert.equal(record.consistency, 'application');
    });

    it('a freeze that never answers is killed at its timeout and the guest is thawed anyway', async () => {
      const zonepath = await startAgent('--hang-freeze');
      const socket = join(zonepath, 'root', 'vm.qga');
      const started = performance.now();
      const { record } = await around(kvmHooks(zonepath, 1), async () => {});
      assert.ok(performance.now() - started < 5000, 'no hook waited past its timeout');
      assert.deepEqual(
        record.hooks.map((h) => `${h.phase} ${h.result}`),
        ['pre timed out', 'post ok'],
      );
      assert.equal(await guestAgentCommand(socket, 'guest-fsfreeze-status'), 'thawed');
      assert.equal(record.consistency, 'crash');
    });

    it('--dry-run prints `zonecopy guest-agent` for the freeze and the thaw and leaves the guest alone', async () => {
      const zonepath = await startAgent();
      const socket = join(zonepath, 'root', 'vm.qga');
      const printed: string[] = [];
      let during: unknown;
      await around(
        kvmHooks(zonepath),
        async () => {
          during = await guestAgentCommand(socket, 'guest-fsfreeze-status');
        },
        new LocalHost(true, (line) => printed.push(line)),
      );
      assert.equal(during, 'thawed');
      const text = printed.join('\n');
      assert.match(text, /guest-agent \S*vm\.qga guest-fsfreeze-freeze/);
      assert.match(text, /guest-agent \S*vm\.qga guest-fsfreeze-thaw/);
    });
  });
});
