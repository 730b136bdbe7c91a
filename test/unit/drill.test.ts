import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { withDrills, type Verdict } from '../../src/cli/check-command.js';
import { renderDrill } from '../../src/cli/drill-command.js';
import type { Host } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import { drillLine, renderHtml, renderText } from '../../src/report/render.js';
import type { VmBackupResult } from '../../src/report/types.js';
import { drillVm } from '../../src/restore/drill.js';
import {
  drillRecordPath,
  readDrillRecord,
  writeDrillRecord,
  type DrillRecord,
} from '../../src/restore/drill-record.js';
import type { BackupSet, ReceiveInto, Received, RestoreSource, SetDataset } from '../../src/restore/source.js';
import { TREE_SCRIPT, VOLUME_SCRIPT } from '../../src/restore/tree-checksum.js';
import { scratchDirectory } from './scratch.js';
import { ScriptedHost } from './scripted-host.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const SET = 'daily-b1';
const RUN = `zones/zonecopy-drill/${VM}-${SET}`;
const fresh = scratchDirectory('zc-drill-records-');

const record = (over: Partial<DrillRecord> = {}): DrillRecord => ({
  vm: VM,
  alias: 'db01',
  at: '2026-01-01T00:00:00.000Z',
  target: 'offsite',
  snapshot: SET,
  result: 'ok',
  problems: [],
  rtoSeconds: 12.34,
  seconds: 20,
  bytes: 3 * 1024 * 1024,
  datasets: [{ source: `zones/${VM}`, type: 'filesystem', check: 'same', bytes: 3 * 1024 * 1024 }],
  ...over,
});
const HOUR = 3_600_000;
const at = Date.parse('2026-01-01T00:00:00.000Z');

describe('drill records', () => {
  it('are written whole per VM and read back; a missing, foreign or broken one reads as none', () => {
    const dir = fresh();
    assert.equal(readDrillRecord(dir, VM), undefined);
    const path = writeDrillRecord(dir, record());
    assert.equal(path, drillRecordPath(dir, VM));
    assert.deepEqual(readDrillRecord(dir, VM), record());
    writeDrillRecord(dir, record({ result: 'failed', problems: ['x'] }));
    assert.equal(readDrillRecord(dir, VM)?.result, 'failed', 'the last drill replaces the one before');
    writeFileSync(path, '{"vm": "another"');
    assert.equal(readDrillRecord(dir, VM), undefined);
    writeFileSync(path, JSON.stringify(record({ vm: 'ffffffff-0000-4000-8000-000000000000' })));
    assert.equal(readDrillRecord(dir, VM), undefined);
    assert.equal(existsSync(`${path}.${process.pid}.tmp`), false);
  });

  it('one line says when, what and how long, or what differed', () => {
    assert.equal(
      drillLine(record(), at + 2 * HOUR),
      'last restore drill 2.0h ago: ok, set daily-b1 from offsite (RTO 12.3 s, 3.0 MiB)',
    );
    const failed = record({ result: 'failed', problems: ['zones/x-disk0: volume bytes differ'] });
    assert.match(
      drillLine(failed, at + 60_000),
      /^last restore drill 60s ago FAILED, set daily-b1 .*: zones\/x-disk0: volume bytes differ$/,
    );
  });
});

describe('check with drills', () => {
  const ok: Verdict = { code: 0, line: '2 VM(s) backed up, oldest 10m ago (db01)' };
  it('no drill ever changes nothing (not an error)', () => {
    assert.deepEqual(withDrills(ok, [{ name: 'db01' }, { name: 'web' }], at), ok);
  });

  it('a passed drill is listed below the unchanged line, with the VMs never drilled', () => {
    const verdict = withDrills(ok, [{ name: 'db01', record: record() }, { name: 'web' }], at + HOUR);
    assert.equal(verdict.code, 0);
    assert.equal(verdict.line, ok.line);
    assert.deepEqual(verdict.details, [
      'db01: last restore drill 60m ago: ok, set daily-b1 from offsite (RTO 12.3 s, 3.0 MiB)',
      'no restore drill yet: web',
    ]);
  });

  it('a failed last drill makes OK a WARNING named on the line; a worse state stays', () => {
    const failed = record({ result: 'failed', problems: ['zones/x: file tree differs'] });
    const verdict = withDrills(ok, [{ name: 'db01', record: failed }], at);
    assert.equal(verdict.code, 1);
    assert.equal(verdict.line, `db01 last restore drill of daily-b1 FAILED; ${ok.line}`);
    assert.match(verdict.details![0]!, /FAILED.*zones\/x: file tree differs/);
    const critical = withDrills({ code: 2, line: 'db01 last backup 3.0d ago' }, [{ name: 'db01', record: failed }], at);
    assert.deepEqual(
      [critical.code, critical.line],
      [2, 'db01 last backup 3.0d ago; db01 last restore drill of daily-b1 FAILED'],
    );
  });
});

describe('report with the last drill', () => {
  const run: VmBackupResult = {
    uuid: VM,
    alias: 'db01',
    backupHost: 'offsite',
    startedAt: new Date(at + HOUR),
    finishedAt: new Date(at + HOUR),
    status: 'success',
    datasets: [],
    errors: [],
    dryRun: false,
  };
  it('text and HTML show it as of the end of the run; a failed one in red; none without a drill', () => {
    assert.match(renderText({ ...run, lastDrill: record() }), /\nlast restore drill 60m ago: ok, set daily-b1/);
    const failed = record({ result: 'failed', problems: ['zones/<x>: differs'] });
    assert.match(
      renderHtml({ ...run, lastDrill: failed }),
      /<p style="color:#cf222e">last restore drill 60m ago FAILED.*zones\/&lt;x&gt;/,
    );
    assert.doesNotMatch(renderText(run), /restore drill/);
    assert.doesNotMatch(renderHtml(run), /restore drill/);
  });
});

/** A source in memory whose receive runs the local `zfs receive` argv it is given, as a stream would. */
class FakeSource implements RestoreSource {
  readonly label = 'fake:backups';
  readonly sendsClonesWhole = true;
  constructor(
    private readonly set: BackupSet,
    private readonly failing?: string,
  ) {}
  async listSets() {
    return [];
  }
  async readSet() {
    return this.set;
  }
  async verify() {}
  async estimate() {
    return 0;
  }
  async receive(_set: BackupSet, dataset: SetDataset, into: ReceiveInto, local: Host): Promise<Received> {
    if (dataset.source === this.failing) throw new Error('stream broke');
    await local.run(into.argv(true), { mutates: true });
    return { mode: 'full', bytes: 1000, seconds: 1 };
  }
  describeReceive(_set: BackupSet, dataset: SetDataset, into: ReceiveInto): string[] {
    return [`send ${dataset.backup}@${SET} | ${into.argv(true).join(' ')}`];
  }
  originWriter() {
    return undefined;
  }
}

const spec = {
  uuid: VM,
  brand: 'kvm',
  alias: 'db01',
  zfs_filesystem: `zones/${VM}`,
  disks: [{ zfs_filesystem: `zones/${VM}-disk0`, path: `/dev/zvol/rdsk/zones/${VM}-disk0` }],
};
const set: BackupSet = {
  vm: VM,
  snapshot: SET,
  spec,
  images: [],
  datasets: [
    { source: `zones/${VM}`, backup: `backup/zones/${VM}` },
    { source: `zones/${VM}-disk0`, backup: `backup/zones/${VM}-disk0` },
  ],
};
const BACKUP_GUIDS: Record<string, string> = { [`zones/${VM}`]: '11', [`zones/${VM}-disk0`]: '22' };

/**
 * A SmartOS host in a table: datasets appear when created, received or cloned and go with destroy;
 * guids and checksums by name. `local` lists the VM's own snapshots of the set here.
 */
function smartosHost(options: {
  local?: Record<string, string>;
  sums?: Record<string, string>;
  dryRun?: boolean;
}): ScriptedHost {
  const datasets = new Set<string>(['zones']);
  const guids: Record<string, string> = {
    [`${RUN}/d0@${SET}`]: '11',
    [`${RUN}/d1@${SET}`]: '22',
    ...(options.local ?? { [`zones/${VM}@${SET}`]: '11', [`zones/${VM}-disk0@${SET}`]: '22' }),
  };
  const sums: Record<string, string> = {
    [`/${RUN}/d0`]: 'a',
    [`/${RUN}/l0`]: 'a',
    [`/dev/zvol/${RUN}/d1`]: 'b',
    [`/dev/zvol/${RUN}/l1`]: 'b',
    ...options.sums,
  };
  const row = (name: string) => [name, 'filesystem', '9', '1', '1', '-', '-', '0', '0', 'off', 'on'].join('\t');
  return new ScriptedHost((argv: Argv) => {
    const [program, sub] = argv;
    const last = argv[argv.length - 1]!;
    if (program === 'vmadm') return { stdout: JSON.stringify(spec) };
    if (program === 'uname') return { stdout: 'Linux\n' };
    if (program === 'sh' && (argv[2] === TREE_SCRIPT || argv[2] === VOLUME_SCRIPT)) {
      const hex = sums[last]?.repeat(64);
      return hex ? { stdout: `entries 5\n${hex}  -\n` } : { exitCode: 1, stderr: `${last}: not there` };
    }
    if (program !== 'zfs') return undefined;
    if (sub === 'list')
      return {
        stdout: argv
          .slice(7)
          .filter((d) => datasets.has(d))
          .map(row)
          .join('\n'),
      };
    if (sub === 'create' || sub === 'receive' || sub === 'clone') datasets.add(last);
    if (sub === 'destroy') for (const d of datasets) if (d === last || d.startsWith(`${last}/`)) datasets.delete(d);
    if (sub === 'get' && argv.includes('guid')) {
      const names = argv.slice(argv.indexOf('guid') + 1);
      const found = names.filter((n) => guids[n]);
      return {
        stdout: found.map((n) => `${n}\t${guids[n]}\n`).join(''),
        exitCode: found.length < names.length ? 1 : 0,
      };
    }
    // zfs clone mounts the file system it makes
    if (sub === 'get' && argv.includes('mounted,mountpoint'))
      return {
        stdout: argv
          .slice(argv.indexOf('mounted,mountpoint') + 1)
          .map((n) => `${n}\tmounted\tyes\n${n}\tmountpoint\t/${n}\n`)
          .join(''),
      };
    if (sub === 'get' && argv.includes('mountpoint'))
      return datasets.has(last) ? { stdout: `/${last}\n` } : { exitCode: 1, stderr: 'dataset does not exist' };
    return undefined;
  }, options.dryRun);
}

function drill(local: ScriptedHost, source = new FakeSource(set)) {
  const context = {
    local,
    source,
    log: silentLog,
    target: 'offsite',
    backupGuids: async () => new Map(Object.entries(BACKUP_GUIDS)),
  };
  return drillVm({ uuid: VM }, context);
}

/** Every command that changed something, as text. */
const changes = (host: ScriptedHost) =>
  host.commands
    .filter(
      (a) => ['create', 'receive', 'clone', 'destroy', 'mount', 'set', 'rollback'].includes(a[1]!) || a[0] === 'rmdir',
    )
    .map((a) => a.join(' '));

describe('drillVm', () => {
  it('passes when guids and content match, reading the VM only through read-only clones, and leaves no copy', async () => {
    const local = smartosHost({});
    const result = await drill(local);
    assert.equal(result.result, 'ok', result.problems.join('; '));
    assert.deepEqual(
      result.datasets.map((d) => [d.source, d.type, d.check]),
      [
        [`zones/${VM}`, 'filesystem', 'same'],
        [`zones/${VM}-disk0`, 'volume', 'same'],
      ],
    );
    assert.equal(result.bytes, 2000);
    assert.ok(result.rtoSeconds <= result.seconds);
    const made = changes(local);
    assert.deepEqual(made.slice(0, 2), [
      'zfs create -p -o canmount=off zones/zonecopy-drill',
      `zfs create -o canmount=off ${RUN}`,
    ]);
    assert.ok(made.includes(`zfs clone -o readonly=on -o zoned=off zones/${VM}@${SET} ${RUN}/l0`));
    assert.ok(made.includes(`zfs clone -o readonly=on zones/${VM}-disk0@${SET} ${RUN}/l1`));
    assert.ok(made.indexOf(`zfs destroy -r -f ${RUN}`) > made.findIndex((c) => c.includes('clone')));
    for (const c of made)
      assert.ok(!/^zfs (?!clone)\S+ .*zones\/7c3b1e2a[^/ ]*( |@|$)/.test(c), `touches the VM: ${c}`);
  });

  it('fails naming the dataset whose bytes differ from the snapshot here, and still destroys the copy', async () => {
    const local = smartosHost({ sums: { [`/dev/zvol/${RUN}/l1`]: 'c' } });
    const result = await drill(local);
    assert.equal(result.result, 'failed');
    assert.equal(result.problems.length, 1);
    assert.match(
      result.problems[0]!,
      new RegExp(
        `^zones/${VM}-disk0: volume bytes differ from this host's zones/${VM}-disk0@${SET} \\(sha256 b{12}… received, c{12}… here\\)$`,
      ),
    );
    assert.match(renderDrill(result)[0]!, new RegExp(`^drill of VM ${VM} from offsite backup set ${SET}: FAILED in`));
    assert.equal(changes(local).filter((c) => c === `zfs destroy -r -f ${RUN}`).length, 1);
  });

  it("a guid that is not the backup's is a difference; no snapshot here leaves the guid check alone", async () => {
    const none = await drill(smartosHost({ local: {} }), new FakeSource(set));
    assert.equal(none.result, 'ok', none.problems.join('; '));
    assert.deepEqual(
      none.datasets.map((d) => d.check),
      ['guid-only', 'guid-only'],
    );
    const other = { ...set, datasets: [set.datasets[0]!] };
    const local = smartosHost({});
    const result = await drillVm(
      { uuid: VM },
      {
        local,
        source: new FakeSource(other),
        log: silentLog,
        target: 'offsite',
        backupGuids: async () => new Map([[`zones/${VM}`, '99']]),
      },
    );
    assert.equal(result.result, 'failed');
    assert.match(result.problems[0]!, /received snapshot has guid 11, the backup's is 99/);
  });

  it('a receive that breaks fails the drill, and the copy is destroyed all the same', async () => {
    const local = smartosHost({});
    const result = await drill(local, new FakeSource(set, `zones/${VM}`));
    assert.equal(result.result, 'failed');
    assert.match(result.problems[0]!, new RegExp(`^zones/${VM}: not received: stream broke`));
    assert.equal(result.datasets[0]!.check, 'failed');
    assert.equal(result.datasets[1]!.check, 'same', 'the other datasets are still checked');
    const made = changes(local);
    const destroyed = made.indexOf(`zfs destroy -r -f ${RUN}`);
    assert.ok(destroyed > 0);
    assert.ok(
      made.slice(destroyed + 1).every((c) => c.startsWith('rmdir ')),
      made.join('\n'),
    );
  });

  it('a dry run prints the receives, clones and clean-up and changes nothing', async () => {
    const local = smartosHost({ dryRun: true });
    await drill(local);
    assert.deepEqual(changes(local), []);
    const printed = local.skippedLines.join('\n');
    assert.match(
      printed,
      new RegExp(`send backup/zones/${VM}@${SET} \\| zfs receive -u -o readonly=on -o zoned=off ${RUN}/d0`),
    );
    assert.match(printed, new RegExp(`zfs clone -o readonly=on zones/${VM}-disk0@${SET} ${RUN}/l1`));
    assert.match(printed, new RegExp(`zfs destroy -r -f ${RUN}$`));
  });
});
