import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { backupErrors, vmErrorLines } from '../../src/cli/vm-errors.js';
import { CommandError, HostStats, type CommandResult, type Host, type RunOptions } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import type { VmBackupResult } from '../../src/report/types.js';
import { vmadmGet, vmLabels } from '../../src/smartos/vmadm.js';
import { scratchDirectory } from './scratch.js';

const WEB = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const DB = '0c9d5e77-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
const GONE = 'ffffffff-0000-4000-8000-000000000000';
const VMS = [
  { uuid: WEB, alias: 'web01', brand: 'joyent' },
  { uuid: DB, alias: 'db01', brand: 'bhyve' },
];

/** vmadm get and lookup as a SmartOS host answers them, for the VMs in VMS; `broken` makes every call fail. */
class FakeVmadm implements Host {
  readonly label = 'local';
  readonly dryRun = false;
  readonly stats = new HostStats();
  readonly commands: Argv[] = [];
  broken = false;

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    this.commands.push(argv);
    const answer = (stdout: string, exitCode = 0, stderr = '') => {
      const result = { host: this.label, command: argv.join(' '), stdout, stderr, exitCode };
      if (exitCode !== 0 && !options.allowExitCodes?.includes(exitCode)) throw new CommandError(result);
      return result;
    };
    if (this.broken) return answer('', 1, 'vmadm: cannot load VMs');
    if (argv[1] === 'get') {
      const vm = VMS.find((v) => v.uuid === argv[2]);
      return vm
        ? answer(JSON.stringify({ ...vm, zfs_filesystem: `zones/${vm.uuid}` }))
        : answer('', 1, `Could not find VM ${argv[2]}`);
    }
    assert.deepEqual(argv.slice(0, 4), ['vmadm', 'lookup', '-j', '-o']);
    const fields = argv[4]!.split(',');
    return answer(
      JSON.stringify(VMS.map((vm) => Object.fromEntries(fields.map((f) => [f, vm[f as keyof typeof vm]])))),
    );
  }

  spawn(): never {
    throw new Error('not used');
  }
  skipped(): void {}
  async close(): Promise<void> {}
}

describe('alias and brand of VMs a run failed before reaching (issue 16, item 7c)', () => {
  it('takes the first VM from the vmadm get already under way, without another command', async () => {
    const host = new FakeVmadm();
    const labels = await vmLabels(host, [WEB], new Map([[WEB, vmadmGet(host, WEB)]]));
    assert.deepEqual(labels.get(WEB), { alias: 'web01', brand: 'joyent' });
    assert.equal(host.commands.length, 1);
  });

  it('finds the others with one vmadm lookup, and leaves a VM vmadm does not know without a name', async () => {
    const host = new FakeVmadm();
    const first = vmadmGet(host, GONE);
    first.catch(() => undefined);
    const labels = await vmLabels(host, [GONE, WEB, DB], new Map([[GONE, first]]));
    assert.deepEqual(labels.get(WEB), { alias: 'web01', brand: 'joyent' });
    assert.deepEqual(labels.get(DB), { alias: 'db01', brand: 'bhyve' });
    assert.equal(labels.get(GONE), undefined);
    assert.equal(host.commands.filter((c) => c[1] === 'lookup').length, 1);
  });

  it('a failing vmadm gives no names and no error (the connection error is what the report is about)', async () => {
    const host = new FakeVmadm();
    host.broken = true;
    const first = vmadmGet(host, WEB);
    first.catch(() => undefined);
    const labels = await vmLabels(host, [WEB, DB], new Map([[WEB, first]]));
    assert.equal(labels.size, 0);
  });
});

const result = (overrides: Partial<VmBackupResult>): VmBackupResult => ({
  uuid: WEB,
  backupHost: 'root@backup:22',
  startedAt: new Date(0),
  finishedAt: new Date(0),
  status: 'success',
  datasets: [],
  errors: [],
  dryRun: false,
  ...overrides,
});
const dataset = (name: string, outcome: 'ok' | 'failed', error?: string) => ({
  dataset: name,
  target: `backup/${name}`,
  snapshot: 's',
  mode: 'full' as const,
  bytes: 0,
  seconds: 0,
  result: outcome,
  error,
  rotatedLocal: [],
  rotatedRemote: [],
});

describe('failed VMs on stderr (issue 16, item 7f)', () => {
  it('one zonecopy: line per failed VM with its errors and dataset errors; nothing for a VM that succeeded', () => {
    const lines = vmErrorLines(
      'backup',
      [
        result({
          uuid: GONE,
          status: 'failed',
          errors: [`VM ${GONE} not found on this host (vmadm get: Could not find VM).\nCheck the UUID.`],
        }),
        result({ alias: 'web01', status: 'success', datasets: [dataset('zones/a', 'ok')] }),
        result({
          uuid: DB,
          alias: 'db01',
          status: 'partial',
          datasets: [dataset('zones/b', 'ok'), dataset('zones/c', 'failed', 'receive failed')],
        }),
      ].map(backupErrors),
    );
    assert.deepEqual(lines, [
      `zonecopy: backup of VM ${GONE}: VM ${GONE} not found on this host (vmadm get: Could not find VM). / Check the UUID.`,
      `zonecopy: backup of VM db01 (${DB}): zones/c: receive failed`,
    ]);
  });

  it('status: a VM with an error gets its line, a healthy one none', () => {
    assert.deepEqual(
      vmErrorLines('status', [
        { uuid: GONE, errors: ['not found'] },
        { uuid: WEB, alias: 'web01', errors: [] },
      ]),
      [`zonecopy: status of VM ${GONE}: not found`],
    );
  });
});

describe('zonecopy backup when the backup host cannot be reached (items 7c, 7f)', () => {
  const dir = scratchDirectory('zc-backup-failures-')();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // vmadm for this host: web01 exists, every other UUID is unknown
  writeFileSync(
    join(bin, 'vmadm'),
    [
      '#!/bin/sh',
      `if [ "$1" = get ] && [ "$2" = ${WEB} ]; then echo '{"uuid":"${WEB}","alias":"web01","brand":"joyent","zfs_filesystem":"zones/${WEB}"}'; exit 0; fi`,
      `if [ "$1" = lookup ]; then echo '[{"uuid":"${WEB}","alias":"web01","brand":"joyent"}]'; exit 0; fi`,
      'echo "Could not find VM $2" >&2; exit 1',
    ].join('\n'),
  );
  chmodSync(join(bin, 'vmadm'), 0o755);
  const key = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileSync(join(dir, 'id_rsa'), key.privateKey, { mode: 0o600 });
  writeFileSync(
    join(dir, 'configuration.json'),
    JSON.stringify({
      backupDestination: '127.0.0.1',
      backupDestinationPort: 1,
      backupDestinationBasePath: 'backup/zones',
      // the report of a run that stops before any snapshot (with the default, it snapshots and thins here)
      snapshotWhenTargetsDown: false,
      backupDestinationPrivateKeyPath: join(dir, 'id_rsa'),
      knownHostsPath: join(dir, 'known_hosts'),
      logDirectory: join(dir, 'log'),
      lockDirectory: join(dir, 'lock'),
    }),
  );
  const backup = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [resolve('build/src/cli/run.js'), 'backup', '--config', join(dir, 'configuration.json'), ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        timeout: 60_000,
      },
    );

  it('--json: results name each VM by alias with the connection error; stderr has one line per VM; stdout is pure JSON', () => {
    const run = backup('--json', WEB, GONE);
    assert.equal(run.status, 1, run.stderr);
    const { results } = JSON.parse(run.stdout) as {
      results: Array<{ uuid: string; alias?: string; brand?: string; errors: string[] }>;
    };
    assert.deepEqual(
      results.map((r) => [r.uuid, r.alias, r.brand]),
      [
        [WEB, 'web01', 'joyent'],
        [GONE, undefined, undefined],
      ],
    );
    for (const r of results) assert.match(r.errors.join(), /cannot connect to backup host/);
    const lines = run.stderr.split('\n').filter((l) => l.startsWith('zonecopy: backup of VM'));
    assert.equal(lines.length, 2, run.stderr);
    assert.match(lines[0]!, new RegExp(`^zonecopy: backup of VM web01 \\(${WEB}\\): cannot connect to backup host`));
    assert.match(lines[1]!, new RegExp(`^zonecopy: backup of VM ${GONE}: cannot connect`));
  });

  it('the text report names the VM by alias, as a successful one does', () => {
    const run = backup(WEB);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, new RegExp(`Backup of VM web01 \\(${WEB}\\) FAILED`));
    assert.match(run.stderr, new RegExp(`zonecopy: backup of VM web01 \\(${WEB}\\): cannot connect`));
  });
});
