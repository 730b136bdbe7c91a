import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasetLines, restoreUsageProblem } from '../../src/cli/restore-command.js';
import type { CommandResult } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import {
  besideReceiveArgv,
  datasetType,
  findSetDataset,
  newNameProblem,
  receiveBeside,
  type ReceivedBeside,
} from '../../src/restore/receive-beside.js';
import { RestoreError } from '../../src/restore/restore-error.js';
import type { BackupSet, ReceiveInto, RestoreSource, SetDataset } from '../../src/restore/source.js';
import { ScriptedHost } from './scripted-host.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const IMAGE = '5f2d4a1e-0000-4000-8000-00000000beef';
const ROOT = `zones/${VM}`;
/** One line of `zfs list -Hp -o name,type,guid,…` for a dataset that exists. */
const row = (name: string) => [name, 'filesystem', '1', '1', '1', '-', '-', '0', '0', 'off', 'on'].join('\t');

const joyent: BackupSet = {
  vm: VM,
  snapshot: 'daily-b2',
  spec: { uuid: VM, brand: 'joyent', zfs_filesystem: ROOT, datasets: [`${ROOT}/data`] },
  images: [],
  datasets: [
    {
      source: ROOT,
      backup: `backup/zones/${VM}`,
      origin: { dataset: `zones/${IMAGE}`, snapshot: 'final', guid: '77' },
    },
    { source: `${ROOT}/data`, backup: `backup/zones/${VM}/data` },
    { source: `${ROOT}/data/pgsql`, backup: `backup/zones/${VM}/data/pgsql` },
  ],
};
const kvm: BackupSet = {
  vm: VM,
  snapshot: 'daily-b2',
  spec: {
    uuid: VM,
    brand: 'kvm',
    zfs_filesystem: ROOT,
    disks: [{ zfs_filesystem: `${ROOT}-disk0` }, { path: `/dev/zvol/rdsk/${ROOT}-disk1` }],
  },
  images: [],
  datasets: [
    { source: ROOT, backup: `backup/zones/${VM}` },
    { source: `${ROOT}-disk0`, backup: `backup/zones/${VM}-disk0` },
    { source: `${ROOT}-disk1`, backup: `backup/zones/${VM}-disk1` },
  ],
};

/** A source that records what it was asked to receive, with the argvs `into` gave. */
function fakeSource(options: { sendsClonesWhole?: boolean; fails?: boolean } = {}) {
  const received: Array<{ dataset: string; fromOrigin: boolean; argvs: Argv[] }> = [];
  const source: RestoreSource = {
    label: 'backup-host',
    sendsClonesWhole: options.sendsClonesWhole ?? true,
    listSets: async () => [],
    readSet: async () => joyent,
    verify: async () => {},
    estimate: async () => 1024,
    receive: async (_set, dataset: SetDataset, into: ReceiveInto) => {
      received.push({
        dataset: dataset.source,
        fromOrigin: into.fromOrigin,
        argvs: [into.argv(true), into.argv(false)],
      });
      if (options.fails) throw new RestoreError('stream broke');
      return { mode: 'full', bytes: 1024, seconds: 0.5 };
    },
    describeReceive: (_set, dataset, into) => [`send ${dataset.backup} | ${into.argv(true).join(' ')}`],
    originWriter: () => undefined,
  };
  return { source, received };
}

/** This host: the VM gone, `existing` datasets there, the image snapshot with guid `imageGuid`. */
function here(existing: string[], imageGuid = ''): (argv: Argv) => Partial<CommandResult> | undefined {
  return (argv) => {
    const line = argv.join(' ');
    if (line.startsWith('vmadm get')) return { exitCode: 1, stderr: 'No such zone' };
    if (line.startsWith('zfs list')) {
      const found = existing.filter((d) => argv.includes(d));
      const missing = argv.filter((a) => a.startsWith('zones') && !existing.includes(a));
      return {
        stdout: found.map(row).join('\n'),
        stderr: missing.map((m) => `cannot open '${m}': dataset does not exist`).join('\n'),
        exitCode: missing.length ? 1 : 0,
      };
    }
    if (line.startsWith('zfs get -Hp -o value guid')) return { stdout: imageGuid };
    if (line.startsWith('zfs get -H -o value mountpoint')) return { stdout: `/${argv.at(-1)}\n` };
    if (line.startsWith('uname')) return { stdout: 'SunOS\n' };
    return undefined;
  };
}

const mutating = (host: ScriptedHost) =>
  host.commands.filter((c) => ['receive', 'mount', 'destroy', 'set', 'create'].includes(c[1]!));

describe('restore --dataset: which dataset, what new name', () => {
  it('finds a dataset by its backed-up name, or relative to the VM root when only one answers', () => {
    assert.equal(findSetDataset(joyent, `${ROOT}/data`).source, `${ROOT}/data`);
    assert.equal(findSetDataset(joyent, 'data').source, `${ROOT}/data`);
    assert.equal(findSetDataset(joyent, 'data/pgsql/').source, `${ROOT}/data/pgsql`);
    assert.equal(findSetDataset(kvm, 'disk0').source, `${ROOT}-disk0`, 'a KVM disk is a sibling of the root');
    const both = { ...kvm, datasets: [...kvm.datasets, { source: `${ROOT}/disk0`, backup: 'b' }] };
    assert.throws(
      () => findSetDataset(both, 'disk0'),
      /ambiguous in backup set daily-b2: it could be zones\/\S+-disk0 or zones\/\S+\/disk0; give the full name/,
    );
  });

  it("an unknown name is refused with the set's datasets listed", () => {
    assert.throws(
      () => findSetDataset(joyent, 'dta'),
      (error: Error) =>
        error instanceof RestoreError &&
        error.message.includes(`has no dataset dta; its datasets are ${ROOT}, ${ROOT}/data, ${ROOT}/data/pgsql`),
    );
    assert.throws(() => findSetDataset(joyent, ''), /has no dataset/);
  });

  it('a new name is never the VM, inside it, a pool, or not a name', () => {
    const vm = [ROOT, `${ROOT}/data`, `${ROOT}-disk0`];
    assert.match(newNameProblem(ROOT, vm)!, /is the VM's dataset .*never over it/);
    assert.match(newNameProblem(`${ROOT}/data/copy`, vm)!, /lies inside the VM's dataset zones\/\S+\/data/);
    assert.match(newNameProblem(`${ROOT}-disk0`, vm)!, /is the VM's dataset/);
    assert.equal(newNameProblem(`${ROOT}-copy`, vm), undefined, 'beside, not within (compared by components)');
    assert.equal(newNameProblem('zones/restored-data', vm), undefined);
    assert.match(newNameProblem('zones', vm)!, /is a pool/);
    assert.match(newNameProblem('zones/a b', vm)!, /not a dataset name/);
    assert.match(newNameProblem('zones/x@snap', vm)!, /not a dataset name/);
    assert.match(newNameProblem('zones/../x', vm)!, /not a dataset name/);
  });

  it('flags that do not go together are usage errors', () => {
    assert.equal(restoreUsageProblem({}), undefined);
    assert.equal(restoreUsageProblem({ dataset: 'data', as: 'zones/r' }), undefined);
    assert.match(restoreUsageProblem({ as: 'zones/r' })!, /--as NEWNAME needs --dataset/);
    assert.match(restoreUsageProblem({ dataset: 'data' })!, /needs --as NEWNAME/);
    assert.match(
      restoreUsageProblem({ dataset: 'data', as: 'zones/r', newUuid: true })!,
      /cannot be combined with --new-uuid/,
    );
    assert.match(restoreUsageProblem({ dataset: 'data', as: 'zones/r', list: true })!, /with --list/);
    assert.match(restoreUsageProblem({ dataset: 'data', as: 'zones' })!, /is a pool/);
  });

  it('receives read-only and zoned=off, a clone from its origin, properties on the first stream only', () => {
    assert.deepEqual(
      besideReceiveArgv('zones/r', { first: true, type: 'filesystem', origin: 'zones/img@final', mountReadOnly: true }),
      ['zfs', 'receive', '-u', '-o', 'readonly=on', '-o', 'zoned=off', '-o', 'origin=zones/img@final', 'zones/r'],
    );
    assert.deepEqual(besideReceiveArgv('zones/r', { first: false, type: 'filesystem', mountReadOnly: true }), [
      'zfs',
      'receive',
      '-u',
      'zones/r',
    ]);
    assert.deepEqual(besideReceiveArgv('zones/r', { first: true, type: 'volume', mountReadOnly: false }), [
      'zfs',
      'receive',
      '-u',
      'zones/r',
    ]);
    assert.equal(datasetType(kvm.spec, `${ROOT}-disk0`), 'volume');
    assert.equal(datasetType(kvm.spec, `${ROOT}-disk1`), 'volume', 'a disk named by its device path');
    assert.equal(datasetType(kvm.spec, ROOT), 'filesystem');
  });
});

describe('receiveBeside on a scripted host', () => {
  const context = (local: ScriptedHost, source: RestoreSource) => ({ local, source, log: silentLog });

  it('receives the delegated dataset beside the deleted VM and mounts it; children are named, not received', async () => {
    const local = new ScriptedHost(here(['zones']));
    const { source, received } = fakeSource();
    const data = findSetDataset(joyent, 'data');
    const result = await receiveBeside(joyent, data, 'zones/restored-data', context(local, source), {
      mountReadOnly: true,
    });
    assert.deepEqual(received, [
      {
        dataset: `${ROOT}/data`,
        fromOrigin: false,
        argvs: [
          ['zfs', 'receive', '-u', '-o', 'readonly=on', '-o', 'zoned=off', 'zones/restored-data'],
          ['zfs', 'receive', '-u', 'zones/restored-data'],
        ],
      },
    ]);
    assert.deepEqual(mutating(local), [['zfs', 'mount', 'zones/restored-data']]);
    assert.equal(result.mountpoint, '/zones/restored-data');
    assert.deepEqual(result.childrenLeft, [`${ROOT}/data/pgsql`]);
    assert.equal(result.type, 'filesystem');
  });

  it('refuses a name that exists, or whose parent does not, before receiving anything', async () => {
    for (const [existing, into, why] of [
      [['zones', 'zones/restored'], 'zones/restored', /zones\/restored exists .*zfs destroy -r zones\/restored/],
      [['zones'], 'zones/nowhere/restored', /parent zones\/nowhere does not exist.*zfs create zones\/nowhere/],
    ] as const) {
      const local = new ScriptedHost(here([...existing]));
      const { source, received } = fakeSource();
      await assert.rejects(
        receiveBeside(joyent, joyent.datasets[1]!, into, context(local, source), { mountReadOnly: true }),
        (error: Error) => error instanceof RestoreError && why.test(error.message),
      );
      assert.deepEqual([received, mutating(local)], [[], []]);
    }
  });

  it('refuses a name inside a dataset of the VM as it is here now (a disk added since the set)', async () => {
    const spec = { ...joyent.spec, datasets: [`${ROOT}/data`, `${ROOT}/data2`] };
    const local = new ScriptedHost((argv) =>
      argv[0] === 'vmadm' ? { stdout: JSON.stringify(spec) } : here(['zones'])(argv),
    );
    const { source, received } = fakeSource();
    await assert.rejects(
      receiveBeside(joyent, joyent.datasets[1]!, `${ROOT}/data2/x`, context(local, source), { mountReadOnly: true }),
      /lies inside the VM's dataset zones\/\S+\/data2/,
    );
    assert.deepEqual(received, []);
  });

  it('a clone comes from the local image when its guid matches; otherwise whole, or refused where the source cannot', async () => {
    const root = joyent.datasets[0]!;
    const same = new ScriptedHost(here(['zones'], '77'));
    const fromImage = fakeSource();
    const result = await receiveBeside(joyent, root, 'zones/r', context(same, fromImage.source), {
      mountReadOnly: true,
    });
    assert.equal(result.clonedFrom, `zones/${IMAGE}@final`);
    assert.equal(fromImage.received[0]!.fromOrigin, true);
    assert.ok(fromImage.received[0]!.argvs[0]!.includes(`origin=zones/${IMAGE}@final`));

    const whole = fakeSource();
    await receiveBeside(joyent, root, 'zones/r', context(new ScriptedHost(here(['zones'], '12')), whole.source), {
      mountReadOnly: true,
    });
    assert.equal(whole.received[0]!.fromOrigin, false);
    assert.ok(!whole.received[0]!.argvs[0]!.some((a) => a.startsWith('origin=')));

    const bucket = fakeSource({ sendsClonesWhole: false });
    const local = new ScriptedHost(here(['zones']));
    await assert.rejects(
      receiveBeside(joyent, root, 'zones/r', context(local, bucket.source), { mountReadOnly: true }),
      /backed up as a clone of zones\/\S+@final \(guid 77\).*imgadm import 5f2d4a1e-0000-4000-8000-00000000beef/,
    );
    assert.deepEqual([bucket.received, mutating(local)], [[], []]);
  });

  it('a receive that breaks midway removes what it made', async () => {
    const local = new ScriptedHost(here(['zones']));
    const { source } = fakeSource({ fails: true });
    await assert.rejects(
      receiveBeside(joyent, joyent.datasets[1]!, 'zones/r', context(local, source), { mountReadOnly: true }),
      /stream broke/,
    );
    assert.deepEqual(mutating(local), [['zfs', 'destroy', '-r', 'zones/r']]);
  });

  it('a file system received but not mountable (an encrypted one without its key) says so and how to go on', async () => {
    const local = new ScriptedHost((argv) =>
      argv[1] === 'mount' ? { exitCode: 1, stderr: 'encryption key not loaded' } : here(['zones'])(argv),
    );
    await assert.rejects(
      receiveBeside(joyent, joyent.datasets[1]!, 'zones/r', context(local, fakeSource().source), {
        mountReadOnly: true,
      }),
      /zones\/r was received but not mounted: encryption key not loaded .*zfs load-key zones\/r.*zfs destroy -r zones\/r/,
    );
  });

  it('a volume gets its device path and no mount; a dry run receives and mounts nothing', async () => {
    const local = new ScriptedHost(here(['zones']));
    const volume = await receiveBeside(kvm, kvm.datasets[1]!, 'zones/disk-copy', context(local, fakeSource().source), {
      mountReadOnly: true,
    });
    assert.equal(volume.device, '/dev/zvol/dsk/zones/disk-copy');
    assert.deepEqual(mutating(local), []);

    const dry = new ScriptedHost(here(['zones']), true);
    const { source, received } = fakeSource();
    await receiveBeside(joyent, joyent.datasets[1]!, 'zones/r', context(dry, source), { mountReadOnly: true });
    assert.deepEqual(received, []);
    assert.deepEqual(dry.skippedLines, [
      `send backup/zones/${VM}/data | zfs receive -u -o readonly=on -o zoned=off zones/r`,
      'zfs mount zones/r',
    ]);
  });

  it('says where it is, what was left out and how to remove it', () => {
    const result: ReceivedBeside = {
      source: `${ROOT}/data`,
      backup: `backup/zones/${VM}/data`,
      snapshot: 'daily-b2',
      into: 'zones/restored-data',
      type: 'filesystem',
      mountpoint: '/zones/restored-data',
      childrenLeft: [`${ROOT}/data/pgsql`],
      mode: 'full',
      bytes: 2048,
      seconds: 0.4,
    };
    assert.deepEqual(datasetLines(VM, result, { target: 'ssh', seconds: 1.25, dryRun: false }), [
      `restored dataset ${ROOT}/data of VM ${VM} from ssh backup set daily-b2 as zones/restored-data in 1.3 s (full, 2.0 KiB)`,
      '  mounted read-only at /zones/restored-data: copy files back from there',
      `  not included: ${ROOT}/data/pgsql (restore it with --dataset ${ROOT}/data/pgsql --as ANOTHER_NAME)`,
      '  remove it when done: zfs destroy -r zones/restored-data',
    ]);
    const volume = { ...result, type: 'volume' as const, device: '/dev/zvol/dsk/zones/d', childrenLeft: [] };
    assert.match(
      datasetLines(VM, volume, { target: 'ssh', seconds: 1, dryRun: true }).join('\n'),
      /^\[dry run\] would restore .*\n {2}volume, read-only: \/dev\/zvol\/dsk\/zones\/d\n/,
    );
  });
});
