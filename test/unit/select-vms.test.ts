/** Which VMs a run of several takes, in which order, side by side, and how it reports them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { vmShare } from '../../src/backup/open-targets.js';
import { inPool } from '../../src/backup/run-vms.js';
import { configSchema } from '../../src/config/schema.js';
import { renderSummaryText, summaryStatus } from '../../src/report/summary.js';
import type { VmBackupResult } from '../../src/report/types.js';
import { checkSelector, imageFirsts, SelectionError, selectVms, type VmListing } from '../../src/smartos/select-vms.js';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const D = 'dddddddd-0000-4000-8000-000000000004';
const IMG1 = '11111111-0000-4000-8000-00000000000a';
const IMG2 = '22222222-0000-4000-8000-00000000000b';
const listed: VmListing[] = [
  { uuid: A, alias: 'web', images: [IMG1] },
  { uuid: B, alias: 'db', images: [IMG2] },
  { uuid: C, alias: 'cache', images: [IMG1, IMG2] },
  { uuid: D, alias: 'scratch', images: [] },
];

describe('VM selection', () => {
  it('a selector names VMs one way, and a filter must look like vmadm lookup takes it', () => {
    assert.throws(() => checkSelector({}), /name the VMs to back up/);
    assert.throws(() => checkSelector({ uuids: [A], all: true }), /not both/);
    assert.throws(
      () => checkSelector({ filters: ['tags.backup'] }),
      (e: Error) => e instanceof SelectionError && /key=value/.test(e.message),
    );
    assert.throws(() => checkSelector({ filters: ['; rm -rf /=1'] }), SelectionError);
    checkSelector({ filters: ['tags.backup=daily', 'alias=~^web'] });
    checkSelector({ all: true, exclude: ['web'] });
  });

  it('--all keeps the listing order less exclusions by UUID or alias; an exclusion that matches nothing is reported', () => {
    const picked = selectVms({ all: true, exclude: ['db', C, 'nosuchvm'] }, listed);
    assert.deepEqual(picked.uuids, [A, D]);
    assert.deepEqual(picked.notes, ['--exclude nosuchvm: no VM on this host has that UUID or alias']);
  });

  it('a filter that matches no VM, or only excluded ones, is reported, not ignored', () => {
    assert.deepEqual(selectVms({ filters: ['tags.backup=weekly'] }, []).notes, [
      '--filter tags.backup=weekly matches no VM on this host',
    ]);
    const allOut = selectVms({ filters: ['alias=web'], exclude: ['web'] }, [listed[0]!]);
    assert.deepEqual(allOut.uuids, []);
    assert.match(allOut.notes[0]!, /every VM --filter alias=web matches is excluded/);
  });

  it('named UUIDs are kept even when vmadm does not list them, so the run reports them missing', () => {
    const gone = 'eeeeeeee-0000-4000-8000-000000000005';
    assert.deepEqual(selectVms({ uuids: [B, gone, B] }, listed).uuids, [B, gone]);
  });

  it('the first VM cloned from an image goes before the others cloned from it', () => {
    const waits = imageFirsts([A, B, C, D], listed);
    assert.deepEqual(waits.get(A), []);
    assert.deepEqual(waits.get(B), []);
    assert.deepEqual(waits.get(C)?.sort(), [A, B].sort());
    assert.deepEqual(waits.get(D), []);
  });
});

describe('VMs side by side (inPool)', () => {
  it('never more than the pool size at once, a VM never before those it waits for, results in order', async () => {
    let running = 0;
    let most = 0;
    const ended: string[] = [];
    const started: string[] = [];
    const results = await inPool([A, B, C, D], 2, imageFirsts([A, B, C, D], listed), async (uuid) => {
      started.push(uuid);
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, uuid === A ? 30 : 5));
      running--;
      ended.push(uuid);
      return uuid.slice(0, 1);
    });
    assert.deepEqual(results, ['a', 'b', 'c', 'd']);
    assert.equal(most, 2);
    // C waits for A and B; D, waiting for nothing, overtakes it
    assert.ok(started.indexOf(C) > started.indexOf(D));
    assert.ok(started.indexOf(C) > ended.indexOf(A) - 1 && ended.indexOf(A) < ended.indexOf(C));
  });

  it('a failing task fails the pool (backupVm reports failures as results, so this is a defect)', async () => {
    await assert.rejects(
      inPool([A, B], 1, new Map(), async (uuid) => {
        if (uuid === B) throw new Error('boom');
        return 1;
      }),
      /boom/,
    );
  });
});

describe('vmConcurrency', () => {
  const parseConfig = (input: object) => configSchema.parse(input);
  const base = { backupDestination: 'bk', backupDestinationBasePath: 'backup/zones' };
  it('is 2 unless set; each VM side by side needs three of the backup host sessions', () => {
    assert.equal(parseConfig(base).vmConcurrency, 2);
    assert.throws(
      () => parseConfig({ ...base, vmConcurrency: 4 }),
      /4 VMs side by side need sshMaxSessions of at least 12/,
    );
    assert.equal(parseConfig({ ...base, vmConcurrency: 4, sshMaxSessions: 12 }).vmConcurrency, 4);
    // object storage has no sessions to share
    const s3 = { backupTarget: 's3', s3: { bucket: 'b-1', endpoint: 'http://127.0.0.1:1' }, vmConcurrency: 8 };
    assert.equal(parseConfig(s3).vmConcurrency, 8);
  });

  it('splits the sessions: two VMs get three streams each of the default ten', () => {
    assert.deepEqual(vmShare({}, 1).streams, 8);
    assert.equal(vmShare({}, 2).streams, 3);
    assert.equal(vmShare({}, 2).transfers, 3);
    assert.equal(vmShare({ sshMaxSessions: 30 }, 3).streams, 8);
  });
});

describe('one summary for a run of several VMs', () => {
  const result = (uuid: string, status: VmBackupResult['status'], alias?: string): VmBackupResult => ({
    uuid,
    alias,
    backupHost: 'root@bk:22',
    startedAt: new Date('2026-12-01T00:00:00Z'),
    finishedAt: new Date('2026-12-01T00:00:02Z'),
    status,
    datasets: [],
    errors: status === 'success' ? [] : ['cannot connect'],
    dryRun: false,
  });
  it('succeeds only if every VM did, fails only if every VM failed', () => {
    assert.equal(summaryStatus([result(A, 'success'), result(B, 'success')]), 'success');
    assert.equal(summaryStatus([result(A, 'success'), result(B, 'failed')]), 'partial');
    assert.equal(summaryStatus([result(A, 'failed'), result(B, 'failed')]), 'failed');
  });
  it('counts, lists failed VMs first with their first error, then each VM section', () => {
    const text = renderSummaryText([result(A, 'success', 'web'), result(B, 'failed', 'db')], ['--exclude x: no VM']);
    const lines = text.split('\n');
    assert.equal(lines[0], '2 VM(s): 1 succeeded, 0 partly failed, 1 failed.');
    assert.equal(lines[1], 'note: --exclude x: no VM');
    assert.match(lines[2]!, /^ {2}failed +db \(bbbbbbbb-.*\) {2}0 B sent in 2\.0 s {2}cannot connect$/);
    assert.match(lines[3]!, /^ {2}success {2}web/);
    assert.match(text, /--- web \(aaaaaaaa-[^)]+\)\nBackup of VM web/);
    assert.match(text, /--- db \(bbbbbbbb-[^)]+\)\nBackup of VM db/);
  });
});
