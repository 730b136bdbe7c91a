/** The service's configuration keys: policies (selector, timing, group, retention, targets) and where state and metrics go. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { policySettings, policyTargets, snapshotTime } from '../../src/service/service.js';
import { toMail } from '../../src/service/cycle-report.js';
import type { VmBackupResult } from '../../src/report/types.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-serve-config-');
const UUID = '6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const minimal = { backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' };
const policy = { name: 'rolling', vms: { filter: ['tags.backup=continuous'] }, every: '15s', group: 'rolling' };

function file(content: unknown): string {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}
const load = (extra: Record<string, unknown>) => loadConfig(file({ ...minimal, ...extra }));
const fails = (extra: Record<string, unknown>, pattern: RegExp) =>
  assert.throws(
    () => load(extra),
    (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    `expected ${pattern}`,
  );

describe('policies in the configuration', () => {
  it('takes a continuous and a cron policy, with defaults for the state file and email', () => {
    const config = load({
      policies: [
        policy,
        {
          name: 'nightly',
          vms: { all: true, exclude: ['scratch'] },
          schedule: '0 3 * * *',
          group: 'daily',
          remoteRetention: '1d1m',
        },
      ],
      metricsTextfile: '/var/zonecopy/metrics/zonecopy.prom',
      metricsListen: '127.0.0.1:9464',
    });
    assert.equal(config.policies?.length, 2);
    assert.equal(config.serviceStateFile, '/var/zonecopy/service.json');
    assert.equal(config.serviceEmail, 'changes');
    assert.equal(config.metricsListen, '127.0.0.1:9464');
  });

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'neither schedule nor every',
      { policies: [{ ...policy, every: undefined }] },
      /exactly one of "schedule".*"every"/,
    ],
    ['both schedule and every', { policies: [{ ...policy, schedule: '* * * * *' }] }, /exactly one of/],
    [
      'a cron field out of range',
      { policies: [{ ...policy, every: undefined, schedule: '0 25 * * *' }] },
      /policies\.0\.schedule.*hour field "25"/s,
    ],
    ['four cron fields', { policies: [{ ...policy, every: undefined, schedule: '0 3 * *' }] }, /expected five fields/],
    ['an interval without a unit', { policies: [{ ...policy, every: '15' }] }, /policies\.0\.every.*15s, 5m/s],
    ['no group', { policies: [{ ...policy, group: undefined }] }, /policies\.0\.group/],
    ['a group with a slash', { policies: [{ ...policy, group: 'a/b' }] }, /snapshot group: letters, digits/],
    ['no VMs named', { policies: [{ ...policy, vms: {} }] }, /name the VMs/],
    ['uuids and all', { policies: [{ ...policy, vms: { all: true, uuids: [UUID] } }] }, /not both/],
    [
      'a filter vmadm would not take',
      { policies: [{ ...policy, vms: { filter: ['tags.backup'] } }] },
      /key=value or key=~regex/,
    ],
    ['a bad retention', { policies: [{ ...policy, localRetention: 'weekly' }] }, /policies\.0\.localRetention/],
    ['an unknown target', { policies: [{ ...policy, targets: ['offsite'] }] }, /no target named "offsite"/],
    ['two policies of one name', { policies: [policy, policy] }, /two policies are named "rolling"/],
    ['a relative state file', { serviceStateFile: 'service.json' }, /serviceStateFile.*absolute/s],
    ['a textfile node_exporter would not read', { metricsTextfile: '/var/zonecopy/metrics.txt' }, /\.prom/],
    ['a listen address without a port', { metricsListen: 'localhost' }, /host:port/],
    ['an unknown email mode', { serviceEmail: 'sometimes' }, /serviceEmail/],
  ];
  for (const [name, extra, pattern] of refused) it(`refuses ${name}`, () => fails(extra, pattern));

  it('a misspelt key in a policy gets a did-you-mean', () => {
    fails(
      { policies: [{ ...policy, every: undefined, schedul: '* * * * *' }] },
      /"policies.0.schedul".*did you mean "policies.0.schedule"/is,
    );
    fails(
      { policies: [{ ...policy, vms: { filters: ['a=b'] } }] },
      /"policies.0.vms.filters".*did you mean "policies.0.vms.filter"/is,
    );
  });
});

describe('a policy applied', () => {
  it('its remoteRetention goes over each target, its localRetention and group into the settings', () => {
    const config = load({
      remoteRetention: '1w1y',
      localSnapshotLimit: 3,
      policies: [{ ...policy, localRetention: '10', remoteRetention: '1h1d' }],
    });
    const p = config.policies![0]!;
    const targets = policyTargets(config, p);
    assert.deepEqual(
      targets.map((t) => [t.name, t.config.remoteRetention]),
      [['backup.example', '1h1d']],
    );
    const settings = policySettings(config, p, targets);
    assert.equal(settings.group, 'rolling');
    assert.ok(settings.localRetention, 'a retention here');
  });

  it('takes the snapshot time from the snapshot name, else the run start', () => {
    const startedAt = new Date('2026-03-10T12:00:05.000Z');
    assert.equal(
      snapshotTime({ snapshot: 'rolling-2026-03-10T12:00:01.250Z', startedAt }, 'rolling'),
      Date.parse('2026-03-10T12:00:01.250Z'),
    );
    assert.equal(snapshotTime({ snapshot: 'rolling-manual', startedAt }, 'rolling'), startedAt.getTime());
  });
});

describe('serve emails', () => {
  const result = (uuid: string, status: VmBackupResult['status']) => ({ uuid, status }) as VmBackupResult;
  it('changes (default): a first failure and each change, not every failed cycle', () => {
    const previous = new Map<string, VmBackupResult['status']>();
    const mailed = (status: VmBackupResult['status']) =>
      toMail('p', [result('u1', status)], 'changes', previous).map((r) => r.status);
    assert.deepEqual(mailed('success'), []);
    assert.deepEqual(mailed('failed'), ['failed']);
    assert.deepEqual(mailed('failed'), []);
    assert.deepEqual(mailed('success'), ['success']);
    assert.deepEqual(mailed('success'), []);
  });
  it('failures, always, never', () => {
    const previous = new Map<string, VmBackupResult['status']>();
    const cycle = [result('u1', 'success'), result('u2', 'partial')];
    assert.deepEqual(
      toMail('p', cycle, 'failures', previous).map((r) => r.uuid),
      ['u2'],
    );
    assert.deepEqual(
      toMail('p', cycle, 'always', previous).map((r) => r.uuid),
      ['u1', 'u2'],
    );
    assert.deepEqual(toMail('p', cycle, 'never', previous), []);
  });
});
