/**
 * `restore --force` failing, on a scripted SmartOS host: the receive-phase faults whose outcome is
 * decided by zonecopy alone (the room check, a receive that breaks on the second dataset) and vmadm
 * create refusing the backed-up spec after the VM was deleted (the way back through vmadm create of
 * its own spec). The real-ZFS guest keeps a cut stream and a start that fails after the swap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import { restoreVm } from '../../src/restore/restore-vm.js';
import type { BackupSet, ReceiveInto, Received, RestoreSource, SetDataset } from '../../src/restore/source.js';
import { isWithin } from '../../src/zfs/names.js';
import { ScriptedHost } from './scripted-host.js';

const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const ROOT = `zones/${VM}`;
const DISK = `${ROOT}-disk0`;
const MiB = 2 ** 20;

/** The KVM VM as `vmadm get` prints it: a zone root and a sibling volume with a 10 MiB reservation, running. */
const EXISTING = {
  uuid: VM,
  brand: 'kvm',
  state: 'running',
  zfs_filesystem: ROOT,
  nics: [],
  disks: [{ zfs_filesystem: DISK, refreservation: 10 }],
};

/** Backed up at daily-b1 and daily-b2; this host still has daily-b1 of both (same guids). */
const SET: BackupSet = {
  vm: VM,
  snapshot: 'daily-b2',
  spec: { ...EXISTING, state: 'stopped' },
  images: [],
  datasets: [ROOT, DISK].map((source, i) => ({
    source,
    backup: `backup/${source}`,
    history: [
      { name: 'daily-b1', guid: `1${i}` },
      { name: 'daily-b2', guid: `2${i}` },
    ],
  })),
};

/** Stream sizes: the whole history, or only what came after the snapshot this host shares. */
const WHOLE: Record<string, number> = { [ROOT]: 300 * MiB, [DISK]: 500 * MiB };
const AFTER_B1: Record<string, number> = { [ROOT]: 8 * MiB, [DISK]: 40 * MiB };

/**
 * A source in memory. Its `receive` runs the local `zfs receive` (so the staged dataset exists on
 * the host) and, for `dropOn`, then fails as a cut SSH session makes it fail.
 */
function fakeSource(dropOn?: string) {
  const received: string[] = [];
  const estimated: Array<{ dataset: string; base?: string }> = [];
  const source: RestoreSource = {
    label: 'zcbackup@127.0.0.2:22',
    sendsClonesWhole: true,
    listSets: async () => [],
    readSet: async () => SET,
    verify: async () => {},
    estimate: async (_set, dataset: SetDataset, into: ReceiveInto) => {
      estimated.push({ dataset: dataset.source, ...(into.base ? { base: into.base.name } : {}) });
      return (into.base ? AFTER_B1 : WHOLE)[dataset.source]!;
    },
    receive: async (_set, dataset: SetDataset, into: ReceiveInto, local): Promise<Received> => {
      await local.run(into.argv(true), { mutates: true });
      received.push(into.name);
      if (dataset.source === dropOn)
        throw new Error(`restore of backup/${dataset.source}@daily-b2 into ${into.name}: the SSH connection closed`);
      return { mode: 'incremental', bytes: 1, seconds: 0 };
    },
    describeReceive: (_set, dataset, into) => [`send ${dataset.backup} | ${into.argv(true).join(' ')}`],
    originWriter: () => undefined,
  };
  return { source, received, estimated };
}

/** One line of `zfs list -Hp -o name,type,guid,createtxg,…`. */
const row = (name: string, type: string, guid: string, txg = 1) =>
  [name, type, guid, String(txg), '1', '-', '-', '0', '0', 'off', 'on'].join('\t');

/**
 * This SmartOS host, as strict as vmadm and zfs are about what they are asked: the VM running at
 * daily-b1, `available` bytes free in zones. Datasets come and go with receive, clone, create,
 * rename and destroy (each keeps the id it was made with, so a test can tell the VM's own data from a
 * copy); vmadm delete destroys the VM's datasets and fails when one is missing (VM.js deletes each
 * disk's volume and the zone root), vmadm create makes them and fails when one exists. The first
 * `createFails` vmadm creates fail as a spec vmadm refuses does.
 */
function smartos(available: number, createFails = 0) {
  let made = 0;
  const dataset = (type: string, snapshots: Array<[string, string]> = []) => ({ id: ++made, type, snapshots });
  const datasets = new Map<string, ReturnType<typeof dataset>>([
    [ROOT, dataset('filesystem', [['daily-b1', '10']])],
    [DISK, dataset('volume', [['daily-b1', '11']])],
  ]);
  const vm = { exists: true, state: 'running' };
  const fail = (stderr: string) => ({ stderr, exitCode: 1 });
  const destroy = (name: string, recursive: boolean) => {
    if (!datasets.has(name)) return fail(`cannot open '${name}': dataset does not exist`);
    for (const d of datasets.keys()) if (d === name || (recursive && isWithin(d, name))) datasets.delete(d);
    return undefined;
  };
  const answer = (argv: Argv): Partial<CommandResult> | undefined => {
    const line = argv.join(' ');
    const last = argv.at(-1)!;
    if (line === `vmadm get ${VM}`)
      return vm.exists ? { stdout: JSON.stringify({ ...EXISTING, state: vm.state }) } : fail(`Unable to find VM ${VM}`);
    if (line.startsWith('vmadm lookup')) return { stdout: '[]' };
    if (line === `vmadm stop ${VM}`) vm.state = 'stopped';
    if (line === `vmadm start ${VM}`) {
      if (!vm.exists) return fail(`Unable to find VM ${VM}`);
      vm.state = 'running';
    }
    if (line === `vmadm delete ${VM}`) {
      const missing = [ROOT, DISK].filter((d) => !datasets.has(d));
      if (!vm.exists || missing.length) return fail(`cannot open '${missing[0]}': dataset does not exist`);
      destroy(ROOT, true);
      destroy(DISK, true);
      vm.exists = false;
    }
    if (line === 'vmadm create') {
      if (createFails-- > 0) return fail('Invalid value(s) for: nics');
      const there = [ROOT, DISK].filter((d) => datasets.has(d));
      if (vm.exists || there.length) return fail(`dataset already exists: ${there[0]}`);
      datasets.set(ROOT, dataset('filesystem'));
      datasets.set(DISK, dataset('volume'));
      Object.assign(vm, { exists: true, state: 'stopped' });
    }
    if (line.startsWith('zfs get -Hp -o name,value available')) return { stdout: `zones\t${available}\n` };
    if (argv[0] !== 'zfs') return undefined;
    if ((argv[1] === 'receive' || argv[1] === 'clone') && !datasets.has(last))
      datasets.set(last, dataset('filesystem'));
    if (argv[1] === 'create') {
      if (datasets.has(last)) return fail(`cannot create '${last}': dataset already exists`);
      datasets.set(last, dataset(argv.includes('-V') ? 'volume' : 'filesystem'));
    }
    if (argv[1] === 'destroy') return destroy(last, argv.includes('-r'));
    if (argv[1] === 'rename') {
      const [from, to] = argv.slice(-2) as [string, string];
      if (!datasets.has(from) || datasets.has(to)) return fail(`cannot rename '${from}' to '${to}'`);
      datasets.set(to, datasets.get(from)!);
      datasets.delete(from);
    }
    if (argv[1] !== 'list') return undefined;
    const names = argv.slice(argv.indexOf('-o') + 2);
    const recursive = argv.includes('-r');
    const wanted = [...datasets].filter(([name]) => names.some((n) => n === name || (recursive && isWithin(name, n))));
    const types = argv[argv.indexOf('-t') + 1]!;
    const lines = wanted.flatMap(([name, d]) => [
      ...(types.includes('filesystem') ? [row(name, d.type, name === ROOT ? '1' : '2')] : []),
      ...(types.includes('snapshot') ? d.snapshots.map(([s, guid]) => row(`${name}@${s}`, 'snapshot', guid)) : []),
    ]);
    const missing = names.filter((n) => !datasets.has(n));
    return {
      stdout: lines.join('\n'),
      stderr: missing.map((n) => `cannot open '${n}': dataset does not exist`).join('\n'),
      exitCode: missing.length ? 1 : 0,
    };
  };
  return { host: new ScriptedHost(answer), datasets, vm };
}

/** Every command that changes something: anything but reading. */
const changes = (host: ScriptedHost) =>
  host.commands.map((c) => c.join(' ')).filter((line) => !/^(zfs (list|get)|vmadm (get|lookup)) /.test(line));

const request = { uuid: VM, newUuid: false, force: true, start: true };

describe('restore --force: failing before the swap', () => {
  it('no room: refused naming the pool, what it has and what the incremental streams need; nothing runs', async () => {
    const { host, datasets } = smartos(30 * MiB);
    const { source, received, estimated } = fakeSource();
    await assert.rejects(restoreVm(request, { local: host, source, log: silentLog }), {
      name: 'RestoreError',
      // 8 MiB after daily-b1 for the root, 40 MiB for the volume (more than its 10 MiB reservation)
      message:
        'pool zones has 30.0 MiB available, the restore needs 48.0 MiB (streams, and zvol reservations); free space or restore elsewhere (--to-host); nothing was changed.',
    });
    assert.deepEqual(
      estimated,
      [
        { dataset: ROOT, base: 'daily-b1' },
        { dataset: DISK, base: 'daily-b1' },
      ],
      'each stream sized from the snapshot this host shares, not whole',
    );
    assert.deepEqual(changes(host), [], 'the VM was not stopped, nothing renamed or received');
    assert.deepEqual(received, []);
    assert.deepEqual([...datasets.keys()], [ROOT, DISK]);
  });

  it("a volume's reservation counts when it is more than its stream", async () => {
    const { host } = smartos(30 * MiB);
    const { source } = fakeSource();
    const reserving = { ...SET, spec: { ...SET.spec, disks: [{ zfs_filesystem: DISK, refreservation: 100 }] } };
    await assert.rejects(
      restoreVm(request, { local: host, source: { ...source, readSet: async () => reserving }, log: silentLog }),
      { message: /the restore needs 108\.0 MiB/ },
    );
    assert.deepEqual(changes(host), []);
  });

  it('the backup host dropped while the second dataset arrives: the staged copies are destroyed, the VM never stopped', async () => {
    const { host, datasets } = smartos(60 * MiB);
    const { source, received } = fakeSource(DISK);
    await assert.rejects(restoreVm(request, { local: host, source, log: silentLog }), {
      name: 'RestoreError',
      message: new RegExp(
        `^receiving backup set daily-b2 beside VM ${VM} failed: restore of backup/${DISK}@daily-b2 into ${DISK}-zonecopy-restoring: the SSH connection closed\\. VM ${VM} was not touched \\(it is running\\) and the partial copy was removed; run the restore again\\.$`,
      ),
    });
    assert.deepEqual(received, [`${ROOT}-zonecopy-restoring`, `${DISK}-zonecopy-restoring`]);
    const run = changes(host);
    assert.deepEqual(
      run.filter((line) => !line.startsWith('zfs receive')),
      [`zfs destroy -r ${ROOT}-zonecopy-restoring`, `zfs destroy -r ${DISK}-zonecopy-restoring`],
      'only the staged copies were removed: no vmadm stop, no rename of the VM',
    );
    // each staged copy a clone of the snapshot the VM shares with the backup: only what changed comes
    assert.ok(run[0]!.includes(`origin=${ROOT}@daily-b1`), run[0]);
    assert.deepEqual([...datasets.keys()], [ROOT, DISK], 'the VM as it was, nothing beside it');
  });
});

describe('restore --force: failing after the VM was deleted', () => {
  /** The datasets by name, each with the id it was made with (1: the VM's root, 2: its volume). */
  const ids = (datasets: ReturnType<typeof smartos>['datasets']) =>
    Object.fromEntries([...datasets].map(([name, d]) => [name, d.id]));

  it('vmadm create refuses the backed-up spec: the VM is created again from its own spec over its own data, running; the received copies go', async () => {
    const { host, datasets, vm } = smartos(60 * MiB, 1);
    const { source } = fakeSource();
    await assert.rejects(restoreVm(request, { local: host, source, log: silentLog }), {
      name: 'RestoreError',
      message: `restoring VM ${VM} over itself failed while creating the VM from the backup set: vmadm create of VM ${VM} on local failed: Invalid value(s) for: nics. VM ${VM} was put back as it was, running; run the restore again once the cause is fixed.`,
    });
    assert.deepEqual(
      ids(datasets),
      { [ROOT]: 1, [DISK]: 2 },
      "the VM's own datasets under their names, nothing beside",
    );
    assert.deepEqual(vm, { exists: true, state: 'running' });
    const run = changes(host);
    const creates = run.filter((line) => line === 'vmadm create');
    assert.equal(creates.length, 2, "the backed-up spec, then the VM's own");
    // the VM's data was only ever renamed: what was destroyed was vmadm's fresh datasets and the staged copies
    assert.deepEqual(
      run.filter((line) => line.startsWith('zfs destroy')),
      [
        `zfs destroy -r ${ROOT}`,
        `zfs destroy -r ${DISK}`,
        `zfs destroy -r ${ROOT}-zonecopy-restoring`,
        `zfs destroy -r ${DISK}-zonecopy-restoring`,
      ],
    );
    assert.ok(
      run.indexOf(`zfs rename ${ROOT}-zonecopy-replaced ${ROOT}`) > run.lastIndexOf(`zfs destroy -r ${ROOT}`),
      'its own root renamed back after the fresh one was destroyed',
    );
    assert.equal(run.at(-3), `vmadm start ${VM}`, 'started, as it ran before');
  });

  it('vmadm create refuses both specs: nothing destroyed, the error says where the data is', async () => {
    const { host, datasets, vm } = smartos(60 * MiB, 2);
    const { source } = fakeSource();
    await assert.rejects(restoreVm(request, { local: host, source, log: silentLog }), {
      name: 'RestoreError',
      message: new RegExp(
        `Putting it back failed too \\(vmadm create of VM ${VM} on local failed: Invalid value\\(s\\) for: nics\\.\\): its previous datasets are kept at ${ROOT}-zonecopy-replaced, ${DISK}-zonecopy-replaced, the received ones at ${ROOT}-zonecopy-restoring, ${DISK}-zonecopy-restoring \\(where not renamed yet\\); nothing was destroyed\\.$`,
      ),
    });
    assert.equal(vm.exists, false);
    assert.deepEqual(ids(datasets), {
      [`${ROOT}-zonecopy-replaced`]: 1,
      [`${DISK}-zonecopy-replaced`]: 2,
      [`${ROOT}-zonecopy-restoring`]: 3,
      [`${DISK}-zonecopy-restoring`]: 4,
    });
    assert.deepEqual(
      changes(host).filter((line) => line.startsWith('zfs destroy')),
      [],
      'nothing destroyed',
    );
  });
});
