import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { executePlan } from '../../src/backup/execute.js';
import { emptyRecord, snapshotWithHooks, type ConsistencyRecord } from '../../src/backup/hook-run.js';
import { selectHooks } from '../../src/backup/hooks.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { CommandError, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import { renderHtml, renderText } from '../../src/report/render.js';
import type { Step } from '../../src/plan/steps.js';
import { consistencyText, parseConsistency } from '../../src/status/consistency.js';
import { renderSetList } from '../../src/restore/list-sets.js';
import type { TransferStrategy } from '../../src/transfer/strategy.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-hooks-config-');
const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const minimal = { backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' };

function file(content: unknown): string {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}
const fails = (hooks: unknown, pattern: RegExp) =>
  assert.throws(
    () => loadConfig(file({ ...minimal, hooks })),
    (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    `expected ${pattern}`,
  );

/** Records every command; `failing` commands exit 1. */
class RecordingHost implements Host {
  readonly dryRun = false;
  readonly stats = new HostStats();
  readonly commands: Array<{ argv: Argv; input?: string }> = [];
  constructor(
    readonly label: string,
    private readonly failing: (argv: Argv) => boolean = () => false,
  ) {}
  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    this.commands.push({ argv, input: options.input?.toString() });
    const result = {
      host: this.label,
      command: argv.join(' '),
      stdout: '',
      stderr: 'refused',
      exitCode: this.failing(argv) ? 1 : 0,
    };
    if (result.exitCode !== 0) throw new CommandError(result);
    return result;
  }
  spawn(): never {
    throw new Error('not used');
  }
  skipped(): void {}
  async close(): Promise<void> {}
}

describe('hooks configuration', () => {
  it('accepts top-level, per-group and per-VM settings', () => {
    const c = loadConfig(
      file({
        ...minimal,
        hooks: {
          timeoutSeconds: 20,
          onPreFailure: 'fail',
          zone: { pre: 'a', post: 'b' },
          groups: { daily: { guestAgent: true } },
          vms: { [UUID]: { global: { post: 'c' } } },
        },
      }),
    );
    assert.equal(c.hooks?.vms?.[UUID]?.global?.post, 'c');
  });

  it('refuses bad settings with the key, what is expected and what to write', () => {
    fails({ onPreFailure: 'ignore' }, /"hooks\.onPreFailure": either "fail" .* or "crash-consistent"/);
    fails({ timeoutSeconds: 0 }, /"hooks\.timeoutSeconds": at least 1 second/);
    fails({ timeoutSeconds: 7200 }, /"hooks\.timeoutSeconds": at most 3600 seconds/);
    fails({ timeoutSeconds: '30s' }, /"hooks\.timeoutSeconds": expected a number of seconds/);
    fails({ zone: {} }, /"hooks\.zone": "pre" and\/or "post"/);
    fails({ zone: { pre: '  ' } }, /"hooks\.zone\.pre": a command line/);
    fails({ zone: { pree: 'x' } }, /unknown key "hooks\.zone\.pree" \(did you mean "hooks\.zone\.pre"\?\)/);
    fails(
      { groups: { daily: { timeoutSecond: 5 } } },
      /unknown key "hooks\.groups\.daily\.timeoutSecond" \(did you mean "hooks\.groups\.daily\.timeoutSeconds"\?\)/,
    );
    fails({ vms: { db01: { zone: { pre: 'x' } } } }, /"hooks\.vms\.db01": a key here must be a VM UUID/);
    fails(
      { groups: { 'daily run': { timeoutSeconds: 5 } } },
      /"hooks\.groups\.daily run": a key here must be a snapshot group/,
    );
    fails({ guestagent: true }, /unknown key "hooks\.guestagent" \(did you mean "hooks\.guestAgent"\?\)/);
  });

  it('a bad hooks setting stops `zonecopy backup` with exit 2 before anything runs', () => {
    const path = file({ ...minimal, hooks: { onPreFailure: 'sometimes' } });
    const run = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../../src/cli/run.js', import.meta.url)), 'backup', UUID, '--config', path, '--dry-run'],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /"hooks\.onPreFailure": either "fail"/);
    assert.equal(run.stdout, '', 'nothing was done, not even printed as a dry run');
  });
});

describe('hooks in the backup host executor', () => {
  const strategy = {
    describe: () => '',
    transfer: async () => ({ bytes: 0, seconds: 0 }),
  } as unknown as TransferStrategy;
  const hooks = selectHooks({
    config: { zone: { pre: 'pause', post: 'resume' } },
    group: 'daily',
    spec: { uuid: UUID, brand: 'joyent', zfs_filesystem: `zones/${UUID}`, state: 'running' },
    snapshot: 'daily-x',
    agentCommand: [],
  })!;

  it('stores the hooks record beside the spec, as the hooks filled it', async () => {
    const local = new RecordingHost('local');
    const remote = new RecordingHost('backup');
    const consistency = emptyRecord('running');
    await snapshotWithHooks(hooks, { record: consistency, errors: [] }, { local, log: silentLog }, async () => {});
    const steps: Step[] = [
      {
        kind: 'store-spec',
        directory: `/var/zonecopy/vmspecs/${UUID}`,
        files: [{ name: 'daily-x.json', content: '{}' }],
        consistencyFile: 'daily-x.consistency',
      },
    ];
    await executePlan(steps, { local, remote, strategy, log: silentLog, consistency });
    const stored = remote.commands.find((c) => c.argv.at(-1) === 'daily-x.consistency');
    const record = parseConsistency(stored?.input) as ConsistencyRecord;
    assert.equal(record.consistency, 'application');
    assert.deepEqual(
      record.hooks.map((h) => `${h.phase} ${h.source} ${h.result}`),
      ['pre hooks.zone.pre ok', 'post hooks.zone.post ok'],
    );
    assert.match(consistencyText(record), /^application-consistent \(pre zone ok \d+\.\d s, post zone ok/);
  });

  it('the email says how consistent the snapshot is, each hook with its result, escaped', () => {
    const consistency: ConsistencyRecord = {
      format: 1,
      consistency: 'crash',
      onPreFailure: 'crash-consistent',
      notes: ['crash-consistent: went on'],
      hooks: [
        {
          phase: 'pre',
          kind: 'zone',
          source: 'internal_metadata.zonecopy_pre_snapshot',
          command: 'x',
          result: 'failed',
          seconds: 0.2,
          exitCode: 1,
          error: 'exited 1: <no db>',
        },
      ],
    };
    const result = {
      uuid: UUID,
      backupHost: 'b',
      startedAt: new Date(0),
      finishedAt: new Date(0),
      status: 'success' as const,
      datasets: [],
      errors: [],
      dryRun: false,
      consistency,
    };
    const html = renderHtml(result);
    assert.match(html, /consistency: crash-consistent \(pre zone failed 0\.2 s\)/);
    assert.match(html, /exited 1: &lt;no db&gt;/);
    assert.match(
      renderText(result),
      /\n {2}pre zone hook \(internal_metadata\.zonecopy_pre_snapshot\) failed: exited 1: <no db> \(0\.2 s\)\n {2}note: crash-consistent: went on/,
    );
  });

  it('restore --list and status say what a set without a record is', () => {
    assert.equal(consistencyText(undefined), 'not recorded (stored before zonecopy recorded consistency)');
    assert.match(
      renderSetList(UUID, [
        { snapshot: 'daily-b', consistency: 'application-consistent (pre zone ok 0.1 s)' },
        { snapshot: 'daily-a', consistency: consistencyText(undefined) },
      ]),
      /daily-b {2}application-consistent.*\n {2}daily-a {2}not recorded/,
    );
  });
});
