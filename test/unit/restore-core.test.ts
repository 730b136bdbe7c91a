import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Host } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog } from '../../src/log.js';
import { BackupHostSource } from '../../src/restore/backup-host-source.js';
import { ensureImages } from '../../src/restore/ensure-images.js';
import type { ImageFile } from '../../src/restore/image-install.js';
import { restoreVm } from '../../src/restore/restore-vm.js';
import { setKey, type SetManifest, type StoredStream } from '../../src/s3/keys.js';
import { ObjectStoreSource } from '../../src/s3/restore-source.js';
import type { S3Settings } from '../../src/s3/settings.js';
import { FakeObjectStore, putStream } from './fake-object-store.js';
import type {
  BackupSet,
  OriginSnapshot,
  ReceiveInto,
  Received,
  RestoreSource,
  SetDataset,
} from '../../src/restore/source.js';
import { ScriptedHost } from './scripted-host.js';

const IMAGE = '5f2d4a1e-0000-4000-8000-00000000beef';
const VM = '7c3b1e2a-1111-4222-8333-444455556666';
/** One line of `zfs list -Hp -o name,type,guid,createtxg,creation,origin,…,readonly,canmount`. */
const row = (name: string, type: string, guid: string, origin = '-') =>
  [name, type, guid, '1', '1', origin, '-', '0', '0', 'off', 'on'].join('\t');

/** The local image with its snapshots (name and guid), as `imgadm get` and `zfs list` show it. */
function imageHere(snapshots: Array<[string, string]>): Array<[string, { stdout: string }]> {
  return [
    ['imgadm get', { stdout: JSON.stringify({ manifest: { uuid: IMAGE }, zpool: 'zones' }) }],
    ['zfs list -Hp -t filesystem,volume', { stdout: row(`zones/${IMAGE}`, 'filesystem', '1') }],
    [
      'zfs list -Hp -t snapshot',
      { stdout: snapshots.map(([name, guid]) => row(`zones/${IMAGE}@${name}`, 'snapshot', guid)).join('\n') },
    ],
  ];
}

const ORIGIN: OriginSnapshot = { dataset: `backup/zones/${IMAGE}`, snapshot: 'snap-x', guid: '777' };

/** A source in memory: records what it was asked to receive and which origins it wrote. */
class FakeSource implements RestoreSource {
  readonly label = 'fake:backups';
  readonly received: Array<{ dataset: string; fromOrigin: boolean; first: Argv }> = [];
  readonly written: Array<{ origin: OriginSnapshot; file: string }> = [];

  constructor(
    private readonly set: BackupSet,
    readonly sendsClonesWhole: boolean,
    private readonly hasStreams = true,
  ) {}

  async listSets() {
    return [{ snapshot: this.set.snapshot, consistency: 'crash-consistent' }];
  }
  async readSet() {
    return this.set;
  }
  async verify() {}
  async receive(_set: BackupSet, dataset: SetDataset, into: ReceiveInto): Promise<Received> {
    this.received.push({ dataset: dataset.source, fromOrigin: into.fromOrigin, first: into.argv(true) });
    return { mode: into.fromOrigin ? 'incremental' : 'full', bytes: 1, seconds: 0 };
  }
  async estimate() {
    return 1;
  }
  describeReceive(_set: BackupSet, dataset: SetDataset, into: ReceiveInto): string[] {
    return [`${dataset.backup} | ${into.argv(true).join(' ')}`];
  }
  originWriter(_set: BackupSet, origin: OriginSnapshot, _local: Host) {
    if (!this.hasStreams) return undefined;
    return {
      describe: (file: string) => `${origin.dataset} > ${file}`,
      write: async (file: string): Promise<ImageFile> => {
        this.written.push({ origin, file });
        return { size: 3, sha1: 'abc' };
      },
    };
  }
}

function setOf(datasets: SetDataset[], images = [{ manifest: { uuid: IMAGE, name: 'base' } }]): BackupSet {
  return {
    vm: VM,
    snapshot: 'daily-b1',
    spec: { uuid: VM, brand: 'joyent', zfs_filesystem: `zones/${VM}` },
    images,
    datasets,
  };
}

const root = (origin?: OriginSnapshot): SetDataset => ({
  source: `zones/${VM}`,
  backup: `backup/zones/${VM}`,
  ...(origin ? { origin } : {}),
});

describe('restore core: images', () => {
  it("uses the backup host's origin snapshot by its real name and guid, not @final", async () => {
    const remote = new ScriptedHost(
      [
        [`ls -1 /var/zonecopy/${VM}`, { stdout: 'daily-b1.images.json\ndaily-b1.json\n' }],
        [`cat /var/zonecopy/${VM}/daily-b1.json`, { stdout: JSON.stringify(setOf([]).spec) }],
        [`cat /var/zonecopy/${VM}/daily-b1.images.json`, { stdout: '[]' }],
        [
          'zfs list',
          {
            stdout: [
              row(`backup/zones/${VM}`, 'filesystem', '10', `backup/zones/${IMAGE}@snap-x`),
              row(`backup/zones/${VM}@daily-b1`, 'snapshot', '11'),
            ].join('\n'),
          },
        ],
        [`zfs get -Hp -o value guid backup/zones/${IMAGE}@snap-x`, { stdout: '777\n' }],
      ],
      false,
      'root@backup:22',
    );
    const source = new BackupHostSource(
      remote,
      { basePath: 'backup/zones', specDirectory: '/var/zonecopy' },
      silentLog,
    );
    const set = await source.readSet(VM);
    assert.equal(set.snapshot, 'daily-b1');
    assert.deepEqual(set.datasets, [{ ...root(ORIGIN), history: [{ name: 'daily-b1', guid: '11' }] }]);

    // @final is another snapshot: checking it (as the SSH restore once did) would refuse this image
    const local = new ScriptedHost(
      imageHere([
        ['final', '555'],
        ['snap-x', '777'],
      ]),
    );
    assert.deepEqual(await ensureImages(set, source, local, silentLog), []);
    assert.ok(!local.commands.some((c) => c[0] === 'imgadm' && c[1] === 'install'));
  });

  it("lists the backup host's complete sets newest first, each with its snapshot's creation time", async () => {
    const snap = (name: string, creation: string) =>
      [`backup/zones/${VM}@${name}`, 'snapshot', '1', '1', creation, '-', '-', '0', '0', 'off', 'on'].join('\t');
    const remote = new ScriptedHost(
      [
        [`ls -1 /var/zonecopy/${VM}`, { stdout: 'daily-b1.json\ndaily-b2.json\ndaily-b3.json\n' }],
        [`cat /var/zonecopy/${VM}/daily-b3.json`, { stdout: JSON.stringify(setOf([]).spec) }],
        [`cat /var/zonecopy/${VM}/daily-b`, { exitCode: 1 }],
        ['zfs list -Hp -t filesystem,volume', { stdout: row(`backup/zones/${VM}`, 'filesystem', '10') }],
        [
          'zfs list -Hp -t snapshot',
          { stdout: [snap('daily-b1', '1700000100'), snap('daily-b2', '1700000200')].join('\n') },
        ],
      ],
      false,
      'root@backup:22',
    );
    const source = new BackupHostSource(
      remote,
      { basePath: 'backup/zones', specDirectory: '/var/zonecopy' },
      silentLog,
    );
    assert.deepEqual(
      (await source.listSets(VM)).map((s) => [s.snapshot, s.created]),
      [
        ['daily-b2', 1700000200],
        ['daily-b1', 1700000100],
      ],
      'daily-b3 has a spec but no snapshot: not complete',
    );
    assert.deepEqual(
      remote.commands.filter((c) => c[0] === 'zfs').map((c) => c[1]),
      ['list', 'list'],
      'the times come with the listing, not one command per snapshot',
    );
  });

  it('refuses an image here without the origin guid, naming the snapshot and both guids, and changes nothing', async () => {
    const source = new FakeSource(setOf([root(ORIGIN)]), true);
    const other = new ScriptedHost(
      imageHere([
        ['final', '555'],
        ['snap-x', '556'],
      ]),
    );
    await assert.rejects(ensureImages(setOf([root(ORIGIN)]), source, other, silentLog), {
      name: 'RestoreError',
      message: new RegExp(
        `^image ${IMAGE} on this host has @snap-x guid 556, but VM ${VM} was cloned from @snap-x guid 777; .*imgadm delete ${IMAGE}`,
      ),
    });
    const lacking = new ScriptedHost(imageHere([['final', '555']]));
    await assert.rejects(ensureImages(setOf([root(ORIGIN)]), source, lacking, silentLog), {
      message: new RegExp(`^image ${IMAGE} on this host has no @snap-x \\(nor any snapshot of that guid\\)`),
    });
    for (const host of [other, lacking])
      assert.deepEqual(
        host.commands.map((c) => c.slice(0, 2).join(' ')),
        ['imgadm get', 'zfs list', 'zfs list'],
      );
    assert.deepEqual(source.written, []);
  });

  it('a snapshot renamed on one side is still the origin: found by its guid', async () => {
    const set = setOf([root(ORIGIN)]);
    const local = new ScriptedHost(imageHere([['final', '777']]));
    assert.deepEqual(await ensureImages(set, new FakeSource(set, true), local, silentLog), []);
  });

  it('installs a missing image once from the stream of its real origin snapshot', async () => {
    const disk = { source: `zones/${VM}-disk0`, backup: `backup/zones/${VM}-disk0`, origin: ORIGIN };
    const elsewhere = {
      source: `zones/${VM}-disk1`,
      backup: 'b',
      origin: { ...ORIGIN, dataset: 'zones/not-an-image' },
    };
    const set = setOf([root(ORIGIN), disk, elsewhere]);
    const source = new FakeSource(set, false);
    const local = new ScriptedHost([
      ['imgadm get', { exitCode: 3 }],
      ['mktemp', { stdout: '/var/tmp/zonecopy-image.q\n' }],
    ]);
    assert.deepEqual(await ensureImages(set, source, local, silentLog), [IMAGE]);
    assert.deepEqual(source.written, [{ origin: ORIGIN, file: '/var/tmp/zonecopy-image.q/image.zfs' }]);
    const installs = local.commands.filter((c) => c[0] === 'imgadm' && c[1] === 'install');
    assert.equal(installs.length, 1, 'two disks of one image install it once; a non-image origin is left alone');
  });

  it('says what to do when a missing image has no stored manifest or stream', async () => {
    const missing = () => new ScriptedHost([['imgadm get', { exitCode: 3 }]]);
    const noManifest = setOf([root(ORIGIN)], []);
    await assert.rejects(ensureImages(noManifest, new FakeSource(noManifest, true), missing(), silentLog), {
      message: `image ${IMAGE} is not installed here and fake:backups has no manifest of it with backup set daily-b1: import it first (imgadm import ${IMAGE}); its @snap-x guid must be 777.`,
    });
    const set = setOf([root(ORIGIN)]);
    await assert.rejects(ensureImages(set, new FakeSource(set, false, false), missing(), silentLog), {
      message: /has no stream of it with backup set daily-b1/,
    });
  });
});

describe('restore core: receiving a clone', () => {
  /** A SmartOS host where vmadm creates the VM as a clone of the image's @final, whose guid is `finalGuid`. */
  function smartos(finalGuid: string): ScriptedHost {
    let created = false;
    return new ScriptedHost((argv) => {
      const line = argv.join(' ');
      if (line.startsWith('vmadm create')) created = true;
      if (line === `vmadm get ${VM}`)
        return created
          ? { stdout: JSON.stringify({ uuid: VM, brand: 'joyent', zfs_filesystem: `zones/${VM}` }) }
          : { exitCode: 1 };
      if (line.startsWith('imgadm get')) return imageHere([])[0]![1];
      if (line.startsWith('zfs list -Hp -t filesystem,volume') && line.endsWith(`zones/${IMAGE}`))
        return { stdout: row(`zones/${IMAGE}`, 'filesystem', '1') };
      if (line.startsWith('zfs list -Hp -t snapshot') && line.endsWith(`zones/${IMAGE}`))
        return {
          stdout: [
            row(`zones/${IMAGE}@final`, 'snapshot', finalGuid),
            row(`zones/${IMAGE}@snap-x`, 'snapshot', '777'),
          ].join('\n'),
        };
      if (line.startsWith('zfs list -Hp -t filesystem,volume'))
        return { stdout: row(`zones/${VM}`, 'filesystem', '20', `zones/${IMAGE}@final`) };
      if (line === `zfs get -Hp -o value guid zones/${IMAGE}@final`) return { stdout: `${finalGuid}\n` };
      return undefined;
    });
  }
  const request = { uuid: VM, newUuid: false, force: false, start: false };
  const origin = { ...ORIGIN, dataset: `zones/${IMAGE}` };

  it('receives from the origin when the recreated clone has its guid', async () => {
    const source = new FakeSource(setOf([root({ ...origin, snapshot: 'final' })]), false);
    const result = await restoreVm(request, { local: smartos('777'), source, log: silentLog });
    assert.deepEqual(source.received, [
      {
        dataset: `zones/${VM}`,
        fromOrigin: true,
        first: ['zfs', 'receive', '-o', `origin=zones/${IMAGE}@final`, `zones/${VM}`],
      },
    ]);
    assert.equal(result.datasets[0]!.mode, 'incremental');
  });

  it('a clone of another snapshot than vmadm clones comes whole from a backup host, and is refused from the bucket', async () => {
    const whole = new FakeSource(setOf([root(origin)]), true);
    await restoreVm(request, { local: smartos('555'), source: whole, log: silentLog });
    assert.deepEqual(whole.received, [
      { dataset: `zones/${VM}`, fromOrigin: false, first: ['zfs', 'receive', `zones/${VM}`] },
    ]);

    const bucket = new FakeSource(setOf([root(origin)]), false);
    await assert.rejects(restoreVm(request, { local: smartos('555'), source: bucket, log: silentLog }), {
      name: 'RestoreError',
      message: `zones/${VM} was backed up as a clone of zones/${IMAGE}@snap-x (guid 777), but the recreated zones/${VM} is a clone of zones/${IMAGE}@final with another guid`,
    });
    assert.deepEqual(bucket.received, []);
  });
});

describe('restore source: object store', () => {
  /** A bucket as two backup runs leave it: the image's origin and the clone's first stream, then an incremental. */
  function bucket(): FakeObjectStore {
    const store = new FakeObjectStore();
    const put = (stream: Parameters<typeof putStream>[3]) => putStream(store, VM, 'none', stream);
    const origin = put({ dataset: `zones/${IMAGE}`, snapshot: 'snap-x', guid: '777', createtxg: 1 });
    const b1 = put({
      dataset: `zones/${VM}`,
      snapshot: 'daily-b1',
      guid: '801',
      createtxg: 5,
      parent: { dataset: `zones/${IMAGE}`, snapshot: 'snap-x', guid: '777' },
    });
    const b2 = put({
      dataset: `zones/${VM}`,
      snapshot: 'daily-b2',
      guid: '802',
      createtxg: 6,
      parent: { dataset: `zones/${VM}`, snapshot: 'daily-b1', guid: '801' },
    });
    const manifest = (snapshot: string, createdAt: string, streams: StoredStream[]): SetManifest => ({
      format: 1,
      vm: VM,
      snapshot,
      createdAt,
      spec: JSON.stringify(setOf([]).spec),
      images: [{ manifest: { uuid: IMAGE } }],
      datasets: [`zones/${VM}`],
      streams,
    });
    for (const set of [manifest('daily-b1', '2026-01-01', [origin, b1]), manifest('daily-b2', '2026-01-02', [b2])])
      store.objects.set(setKey('p', VM, set.snapshot), { body: Buffer.from(JSON.stringify(set)), metadata: {} });
    return store;
  }
  const settings = { prefix: 'p' } as S3Settings;

  it('a host that still has daily-b1 (by guid) gets only the stream after it, and the room check counts only that', async () => {
    const source = new ObjectStoreSource(bucket(), settings, silentLog);
    const set = await source.readSet(VM);
    const dataset = set.datasets[0]!;
    const into = (base?: { name: string; guid: string }) => ({
      name: `zones/${VM}-zonecopy-restoring`,
      fromOrigin: false,
      ...(base ? { base } : {}),
      argv: () => ['zfs', 'receive', `zones/${VM}-zonecopy-restoring`],
    });
    const whole = source.describeReceive(set, dataset, into());
    assert.deepEqual(
      whole.map((line) => line.split(' | ')[0]),
      [`${source.label}: get p/${VM}/${VM}/daily-b1`, `${source.label}: get p/${VM}/${VM}/daily-b2`],
    );
    const after = source.describeReceive(set, dataset, into({ name: 'daily-b1', guid: '801' }));
    assert.deepEqual(
      after.map((line) => line.split(' | ')[0]),
      [`${source.label}: get p/${VM}/${VM}/daily-b2`],
    );
    const sizes = [...set.chains.get(`zones/${VM}`)!].map((stream) => stream.bytes ?? 0);
    assert.equal(await source.estimate(set, dataset, into()), sizes[0]! + sizes[1]!);
    assert.equal(await source.estimate(set, dataset, into({ name: 'daily-b1', guid: '801' })), sizes[1]);
  });

  it("reads a set with its clone's origin as stored, lists sets newest first, and refuses a changed stream", async () => {
    const store = bucket();
    const source = new ObjectStoreSource(store, settings, silentLog);
    assert.deepEqual(
      (await source.listSets(VM)).map((s) => [s.snapshot, s.created]),
      [
        ['daily-b2', Date.parse('2026-01-02') / 1000],
        ['daily-b1', Date.parse('2026-01-01') / 1000],
      ],
      'each set with when it was made, to compare it with other targets',
    );
    const set = await source.readSet(VM);
    assert.equal(set.snapshot, 'daily-b2');
    assert.deepEqual(
      set.datasets.map(({ history, ...d }) => ({ ...d, history: history?.map((h) => h.name) })),
      [
        {
          source: `zones/${VM}`,
          backup: `p/${VM}/${VM}/daily-b2`,
          origin: { ...ORIGIN, dataset: `zones/${IMAGE}` },
          history: ['daily-b1', 'daily-b2'],
        },
      ],
      'the chain a host that still has one of its snapshots needs only the rest of',
    );
    assert.equal(source.sendsClonesWhole, false);
    assert.ok(source.originWriter(set, set.datasets[0]!.origin!, new ScriptedHost([])));
    assert.equal(source.originWriter(set, { ...ORIGIN, guid: '778' }, new ScriptedHost([])), undefined);
    await source.verify(set, { readStreams: true });

    store.objects.get(`p/${VM}/${VM}/daily-b1`)!.body = Buffer.from('changed in the bucket');
    await assert.rejects(source.verify(await source.readSet(VM, 'daily-b2'), { readStreams: true }), {
      name: 'RestoreError',
      message: new RegExp(
        `^refusing to restore backup set daily-b2: p/${VM}/${VM}/daily-b1: stored bytes do not match`,
      ),
    });
    await assert.rejects(source.readSet(VM, 'daily-b9'), {
      message: `VM ${VM}: no complete backup set daily-b9 in the bucket; complete sets: daily-b2, daily-b1`,
    });
  });
});
