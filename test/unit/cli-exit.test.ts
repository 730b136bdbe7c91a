import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { checkVerdict } from '../../src/cli/check-command.js';
import { buildProgram, main } from '../../src/cli/main.js';
import type { VmStatus } from '../../src/status/collect.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-cli-');
const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const ENTRY = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

function config(content: unknown): string {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}
const valid = config({ backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' });
const unknownKey = config({ backupDestinaton: 'x' });
const missing = join(scratch(), 'nothing-here.json');

/** `zonecopy ARGS` in this process, for cases that write only to stderr (stdout carries the test runner's reports). */
async function inProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** `zonecopy ARGS` as a process, for what it prints on stdout. */
function spawned(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [ENTRY, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the CLI returns its exit status', () => {
  after(() => assert.equal(process.exitCode, undefined, 'main leaves process.exitCode to its caller'));

  const cases: Array<{ name: string; args: string[]; code: number; stderr: RegExp }> = [
    ...['backup', 'restore', 'release', 'status'].flatMap((command) => [
      {
        name: `${command}: an unreadable configuration`,
        args: [command, UUID, '--config', missing],
        code: 2,
        stderr: /cannot read the configuration .*nothing-here\.json: ENOENT\. Copy configuration\.json\.example/,
      },
      {
        name: `${command}: an unknown configuration key`,
        args: [command, UUID, '--config', unknownKey],
        code: 2,
        stderr: /backupDestinaton/,
      },
      {
        name: `${command}: not a UUID`,
        args: [command, 'db01', '--config', valid],
        code: 2,
        stderr: /not a VM UUID: "db01"/,
      },
    ]),
    ...['backup', 'restore', 'status'].map((command) => ({
      name: `${command}: an unknown target`,
      args: [command, UUID, '--config', valid, '--target', 'ftp'],
      code: 2,
      stderr: /--target "ftp": use ssh or s3/,
    })),
    {
      name: 'status: --target s3 without an s3 section',
      args: ['status', UUID, '--config', valid, '--target', 's3'],
      code: 2,
      stderr: /--target s3 needs an "s3" section/,
    },
    {
      name: 'status: --verify on the backup host',
      args: ['status', UUID, '--config', valid, '--verify'],
      code: 2,
      stderr: /--verify checks stored streams in object storage/,
    },
    {
      name: 'restore: a --snapshot that is no snapshot name',
      args: ['restore', UUID, '--config', valid, '--snapshot', 'a b'],
      code: 2,
      stderr: /--snapshot "a b" is not a snapshot name/,
    },
    {
      name: 'backup: a bad --localSnapLimit',
      args: ['backup', UUID, '--config', valid, '--localSnapLimit', 'x'],
      code: 2,
      stderr: /localSnap/,
    },
    {
      name: 'guest-agent: an unknown agent command',
      args: ['guest-agent', '/nonexistent.qga', 'guest-shutdown'],
      code: 2,
      stderr: /unknown command "guest-shutdown"/,
    },
    {
      name: 'guest-agent: a socket that is not there fails the command',
      args: ['guest-agent', join(scratch(), 'vm.qga'), 'guest-ping'],
      code: 1,
      stderr: /zonecopy guest-agent: /,
    },
    {
      name: 'forget-target: a target still configured (named after backupDestination)',
      args: ['forget-target', 'backup.example', '--config', valid],
      code: 2,
      stderr: /forget-target "backup\.example": it is still a target in .*remove it from the configuration/,
    },
    {
      name: 'forget-target: not a target name',
      args: ['forget-target', 'a/b', '--config', valid],
      code: 2,
      stderr: /forget-target "a\/b": not a target name/,
    },
    {
      name: 'forget-target: an unreadable configuration',
      args: ['forget-target', 'gone', '--config', missing],
      code: 2,
      stderr: /cannot read the configuration/,
    },
    { name: 'an unknown command', args: ['bakup', UUID], code: 2, stderr: /unknown command 'bakup'/ },
    {
      name: 'backup of no VM',
      args: ['backup', '--config', valid],
      code: 2,
      stderr: /name the VMs to back up: their UUIDs, --all, or --filter/,
    },
    {
      name: 'backup: a filter vmadm would not take',
      args: ['backup', '--filter', 'tags.backup', '--config', valid],
      code: 2,
      stderr: /--filter "tags\.backup": expected key=value or key=~regex/,
    },
    {
      name: 'backup: UUIDs and --all',
      args: ['backup', UUID, '--all', '--config', valid],
      code: 2,
      stderr: /not both/,
    },
    { name: 'a missing argument', args: ['restore'], code: 2, stderr: /missing required argument 'vm-uuid'/ },
    { name: 'an unknown option', args: ['status', '--verfy'], code: 2, stderr: /unknown option '--verfy'/ },
  ];
  for (const c of cases) {
    it(`${c.name}: exit ${c.code}`, async () => {
      const run = await inProcess(c.args);
      assert.equal(run.code, c.code, run.stderr);
      assert.match(run.stderr, c.stderr);
    });
  }

  it('check cannot look: UNKNOWN (3), since 2 would tell a monitor CRITICAL', () => {
    for (const args of [
      ['check', '--config', missing],
      ['check', '--config', valid, '--warn', 'soon'],
      ['check', 'db01', '--config', valid],
    ]) {
      const run = spawned(args);
      assert.equal(run.code, 3, run.stdout + run.stderr);
      assert.match(run.stdout, /^ZONECOPY UNKNOWN - (cannot read the configuration|not a duration|not a VM UUID)/);
    }
  });

  it("release works on this host's vmadm (CI: commander's Command arrived as its hosts); a vmadm that fails is said, not an internal error", () => {
    const bin = join(scratch(), 'bin');
    mkdirSync(bin);
    const missing = spawned(['release', UUID, '--config', valid], { PATH: bin });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^zonecopy: local: `vmadm get 6b0a2c3e-[^`]*` exited 127/);
    writeFileSync(join(bin, 'vmadm'), `#!/bin/sh\necho "No such zone configured" >&2\nexit 1\n`);
    chmodSync(join(bin, 'vmadm'), 0o755);
    const unknown = spawned(['release', UUID, '--config', valid], { PATH: `${bin}:/usr/bin:/bin` });
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(
      unknown.stderr,
      /^zonecopy release: VM 6b0a2c3e-\S+ not found on this host \(vmadm get: No such zone configured\)/,
    );
  });

  it('help and version exit 0, and each command states its exit status', () => {
    assert.equal(spawned(['--version']).code, 0);
    const help = spawned(['status', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit status: 0 every chain healthy, 1 something needs attention, 2 usage or/);
  });
});

describe('the CLI keeps every option', () => {
  it('each command has its options, the shared ones declared once with one meaning', () => {
    const program = buildProgram();
    const options = Object.fromEntries(program.commands.map((c) => [c.name(), c.options.map((o) => o.long)]));
    assert.deepEqual(options, {
      backup: [
        '--all',
        '--filter',
        '--exclude',
        '--config',
        '--groupName',
        '--name',
        '--transferStrategy',
        '--localSnapLimit',
        '--remoteSnapLimit',
        '--remoteSnapshotLimit',
        '--keep-local',
        '--keep-remote',
        '--no-holds',
        '--rollback',
        '--target',
        '--wait',
        '--dry-run',
        '--verbose',
        '--json',
      ],
      restore: [
        '--config',
        '--snapshot',
        '--target',
        '--to-host',
        '--new-uuid',
        '--force',
        '--start',
        '--dataset',
        '--as',
        '--list',
        '--dry-run',
        '--verbose',
        '--json',
      ],
      drill: ['--config', '--target', '--scratch', '--snapshot', '--dry-run', '--verbose', '--json'],
      release: ['--config', '--remote', '--target', '--dry-run'],
      'forget-target': ['--config', '--dry-run'],
      status: ['--config', '--json', '--target', '--verify', '--watch', '--interval'],
      check: ['--config', '--warn', '--crit', '--target'],
      serve: ['--config', '--metrics-listen', '--once', '--verbose'],
      'guest-agent': [],
    });
    const meanings = new Map<string, Set<string>>();
    for (const command of program.commands)
      for (const o of command.options)
        if (o.long !== '--dry-run') meanings.set(o.long!, (meanings.get(o.long!) ?? new Set()).add(o.description));
    for (const [flag, texts] of meanings) assert.equal(texts.size, 1, `${flag}: ${[...texts].join(' | ')}`);
  });
});

describe('check verdicts', () => {
  const vm = (alias: string, ageSeconds: number, error?: string): VmStatus => ({
    uuid: `${alias}-uuid`,
    alias,
    ageSeconds,
    datasets: [],
    ...(error ? { error } : {}),
  });
  const WARN = 3600;
  const CRIT = 7200;
  const table: Array<[string, VmStatus[], number, RegExp]> = [
    ['all fresh', [vm('a', 60), vm('b', 600)], 0, /^2 VM\(s\) backed up, oldest 10m ago \(b\)$/],
    ['one past --warn', [vm('a', 60), vm('b', 4000)], 1, /^b last backup 67m ago$/],
    ['one past --crit outweighs a warning', [vm('a', 4000), vm('b', 8000)], 2, /^b last backup 2\.2h ago; a last/],
    ['never backed up is critical', [vm('a', Infinity)], 2, /^a last backup never ago$/],
    ['a VM that cannot be read is unknown', [vm('a', 8000), vm('b', 0, 'vmadm: no such VM')], 3, /^b: vmadm/],
    ['no VMs', [], 3, /^no VMs found$/],
  ];
  for (const [name, statuses, code, line] of table) {
    it(`${name}: ${code}`, () => {
      const verdict = checkVerdict([{ target: 'bk1', statuses }], WARN, CRIT);
      assert.equal(verdict.code, code);
      assert.match(verdict.line, line);
    });
  }

  const DAY = 86400;
  const common = (alias: string, ages: number[]): VmStatus => ({
    ...vm(alias, Math.max(...ages)),
    datasets: ages.map((ageSeconds, i) => ({
      dataset: `zones/${alias}-${i}`,
      target: 'x',
      localGroups: {},
      remoteGroups: {},
      newestCommon: Number.isFinite(ageSeconds)
        ? { name: `daily-${i}`, guid: `${i}`, creation: 0, ageSeconds }
        : undefined,
      resumePending: false,
      chain: 'ok' as const,
    })),
  });
  const staleTable: Array<[string, Parameters<typeof checkVerdict>[0], number, RegExp]> = [
    [
      'a target behind its staleAfter is critical, naming target, VM, its oldest dataset and the age',
      [{ target: 'offsite', staleAfter: 2 * DAY, statuses: [common('db', [600, 3 * DAY])] }],
      2,
      /^target offsite is behind for db: newest common snapshot daily-1 is 3\.0d old \(staleAfter 2d\)$/,
    ],
    [
      'within staleAfter (and --crit is the only other limit): OK',
      [{ target: 'offsite', staleAfter: 2 * DAY, statuses: [common('db', [600, 1000])] }],
      0,
      /^1 VM\(s\) backed up, oldest 17m ago \(db\)$/,
    ],
    [
      'no snapshot in common at all is behind',
      [{ target: 'offsite', staleAfter: 36 * 3600, statuses: [common('db', [600, Infinity])] }],
      2,
      /^target offsite is behind for db: no snapshot in common \(staleAfter 36h\)$/,
    ],
    [
      'without staleAfter a target is judged by --warn/--crit only',
      [{ target: 'offsite', statuses: [common('db', [600, 30 * DAY])] }],
      2,
      /^db last backup 30\.0d ago$/,
    ],
    [
      'several targets: each judged by its own staleAfter, lines name the target',
      [
        { target: 'bk1', statuses: [common('db', [60])] },
        { target: 'offsite', staleAfter: 30, statuses: [common('db', [60])] },
      ],
      2,
      /^target offsite is behind for db: newest common snapshot daily-0 is 60s old \(staleAfter 30s\)$/,
    ],
    [
      'several fresh targets: one summary naming where the oldest is',
      [
        { target: 'bk1', statuses: [common('db', [60])] },
        { target: 'offsite', staleAfter: DAY, statuses: [common('db', [600])] },
      ],
      0,
      /^1 VM\(s\) backed up to 2 targets, oldest 10m ago \(db on offsite\)$/,
    ],
    [
      'a target that cannot be read is unknown, named',
      [
        { target: 'bk1', statuses: [common('db', [60])] },
        { target: 'offsite', statuses: [], error: 'cannot connect' },
      ],
      3,
      /^offsite: cannot connect$/,
    ],
  ];
  for (const [name, targets, code, line] of staleTable) {
    it(`${name}: ${code}`, () => {
      const verdict = checkVerdict(targets, WARN * 100, CRIT * 100);
      assert.equal(verdict.code, code);
      assert.match(verdict.line, line);
    });
  }
});
