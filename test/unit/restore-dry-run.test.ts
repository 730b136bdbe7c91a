import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { silentLog } from '../../src/log.js';
import { BackupHostSource } from '../../src/restore/backup-host-source.js';
import { restoreVm } from '../../src/restore/restore-vm.js';
import type { RestoreSource } from '../../src/restore/source.js';
import { setKey, type SetManifest, type StoredStream } from '../../src/s3/keys.js';
import { ObjectStoreSource } from '../../src/s3/restore-source.js';
import type { S3Settings } from '../../src/s3/settings.js';
import { decompressArgv } from '../../src/s3/streams.js';
import { pipelineText } from '../../src/host/quote.js';
import { FakeObjectStore, putStream } from './fake-object-store.js';
import { scratchDirectory } from './scratch.js';
import { ScriptedHost } from './scripted-host.js';

const IMAGE = '5f2d4a1e-0000-4000-8000-00000000beef';
const VM = '7c3b1e2a-1111-4222-8333-444455556666';
const SPEC = { uuid: VM, brand: 'joyent', zfs_filesystem: `zones/${VM}`, datasets: [`zones/${VM}/data`] };
const MANIFEST = { uuid: IMAGE, name: 'base', files: [{ size: 10, sha1: 'f00' }] };
/** One line of `zfs list -Hp -o name,type,guid,createtxg,creation,origin,…,readonly,canmount`. */
const row = (name: string, type: string, guid: string, origin = '-') =>
  [name, type, guid, '1', '1', origin, '-', '0', '0', 'off', 'on'].join('\t');

/** A SmartOS host without the VM or its image: a dry run may only read it. */
const smartos = () =>
  new ScriptedHost((argv) => {
    const line = argv.join(' ');
    if (line === `vmadm get ${VM}`) return { exitCode: 1 };
    if (line === `imgadm get ${IMAGE}`) return { exitCode: 3 };
    return undefined;
  }, true);

/** The backup host after one run: the zone (a clone of its image) and its delegated dataset at daily-b1. */
function backupHost(): ScriptedHost {
  return new ScriptedHost(
    [
      [`ls -1 /var/zonecopy/${VM}`, { stdout: 'daily-b1.images.json\ndaily-b1.json\n' }],
      [`cat /var/zonecopy/${VM}/daily-b1.json`, { stdout: JSON.stringify(SPEC) }],
      [`cat /var/zonecopy/${VM}/daily-b1.images.json`, { stdout: JSON.stringify([{ manifest: MANIFEST }]) }],
      [
        'zfs list',
        {
          stdout: [
            row(`backup/zones/${VM}`, 'filesystem', '10', `backup/zones/${IMAGE}@snap-x`),
            row(`backup/zones/${VM}@daily-b1`, 'snapshot', '11'),
            row(`backup/zones/${VM}/data`, 'filesystem', '12'),
            row(`backup/zones/${VM}/data@daily-b1`, 'snapshot', '13'),
          ].join('\n'),
        },
      ],
      [`zfs get -Hp -o value guid backup/zones/${IMAGE}@snap-x`, { stdout: '777\n' }],
    ],
    true,
    'root@backup:22',
  );
}

/** A bucket that counts every object read. */
class CountingStore extends FakeObjectStore {
  readonly reads: string[] = [];
  override async get(key: string): Promise<Readable> {
    this.reads.push(key);
    return super.get(key);
  }
}

/** The bucket after two runs: the image's origin, the zone's first stream from it and an incremental, the data's full stream. */
function bucket(): CountingStore {
  const store = new CountingStore();
  const put = (stream: Parameters<typeof putStream>[3]) => putStream(store, VM, 'zstd', stream);
  const origin = put({ dataset: `zones/${IMAGE}`, snapshot: 'snap-x', guid: '777', createtxg: 1 });
  const parent = { dataset: `zones/${IMAGE}`, snapshot: 'snap-x', guid: '777' };
  const b1 = put({ dataset: `zones/${VM}`, snapshot: 'daily-b1', guid: '801', createtxg: 5, parent });
  const data = put({ dataset: `zones/${VM}/data`, snapshot: 'daily-b1', guid: '901', createtxg: 5 });
  const b2 = put({
    dataset: `zones/${VM}`,
    snapshot: 'daily-b2',
    guid: '802',
    createtxg: 6,
    parent: { dataset: `zones/${VM}`, snapshot: 'daily-b1', guid: '801' },
  });
  const data2 = put({
    dataset: `zones/${VM}/data`,
    snapshot: 'daily-b2',
    guid: '902',
    createtxg: 6,
    parent: { dataset: `zones/${VM}/data`, snapshot: 'daily-b1', guid: '901' },
  });
  const manifest = (snapshot: string, createdAt: string, streams: StoredStream[]): SetManifest => ({
    format: 1,
    vm: VM,
    snapshot,
    createdAt,
    spec: JSON.stringify(SPEC),
    images: [{ manifest: MANIFEST }],
    datasets: [`zones/${VM}`, `zones/${VM}/data`],
    streams,
  });
  const sets = [
    manifest('daily-b1', '2026-01-01', [origin, b1, data]),
    manifest('daily-b2', '2026-01-02', [b2, data2]),
  ];
  for (const set of sets)
    store.objects.set(setKey('p', VM, set.snapshot), { body: Buffer.from(JSON.stringify(set)), metadata: {} });
  return store;
}

/** Commands that only read, on either host. */
const READS = ['ls', 'cat', 'vmadm get', 'vmadm lookup', 'imgadm get', 'zfs list', 'zfs get', 'zfs send -nP'];
const onlyReads = (host: ScriptedHost) =>
  host.commands.map((c) => c.join(' ')).filter((line) => !READS.some((read) => line.startsWith(`${read} `)));

describe('a dry-run restore', () => {
  const temporary = scratchDirectory('zc-dry-restore-');
  const saved = process.env.TMPDIR;
  let tmp = '';
  before(() => {
    tmp = temporary();
    process.env.TMPDIR = tmp;
  });
  after(() => {
    process.env.TMPDIR = saved;
  });

  const request = { uuid: VM, newUuid: false, force: false, start: true };

  async function dryRestore(source: RestoreSource, local: ScriptedHost) {
    const result = await restoreVm(request, { local, source, log: silentLog });
    assert.deepEqual(onlyReads(local), [], 'nothing changed here');
    assert.deepEqual(readdirSync(tmp), [], 'no temporary directory made');
    const printed = local.skippedLines;
    for (const step of [`vmadm create`, `vmadm stop ${VM}`, `imgadm install -m`, `vmadm start ${VM}`])
      assert.ok(
        printed.some((line) => line.startsWith(step)),
        `prints ${step}:\n${printed.join('\n')}`,
      );
    assert.deepEqual(
      result.datasets.map((d) => d.local),
      [`zones/${VM}`, `zones/${VM}/data`],
    );
    return printed;
  }

  it('from a backup host: prints each receive with its zfs send, and sends nothing', async () => {
    const remote = backupHost();
    const source = new BackupHostSource(
      remote,
      { basePath: 'backup/zones', specDirectory: '/var/zonecopy' },
      silentLog,
    );
    // ScriptedHost.spawn throws: a stream started on either host would fail this test
    const printed = await dryRestore(source, smartos());
    assert.deepEqual(onlyReads(remote), [], 'the backup host is only read');
    const receives = printed.filter((line) => line.includes('zfs receive'));
    assert.deepEqual(receives, [
      `root@backup:22: zfs send -i backup/zones/${IMAGE}@snap-x backup/zones/${VM}@daily-b1 | zfs receive -o origin=zones/${IMAGE}@snap-x zones/${VM}`,
      `root@backup:22: zfs send backup/zones/${VM}/data@daily-b1 | zfs receive -u -o zoned=on zones/${VM}/data`,
    ]);
    assert.ok(
      printed.includes(
        `root@backup:22: zfs send backup/zones/${IMAGE}@snap-x > /var/tmp/zonecopy-image.XXXXXX/image.zfs`,
      ),
      printed.join('\n'),
    );
  });

  it('from the bucket: prints each object it would receive, and reads no stream', async () => {
    const store = bucket();
    const source = new ObjectStoreSource(store, { prefix: 'p' } as S3Settings, silentLog);
    const printed = await dryRestore(source, smartos());
    assert.deepEqual(store.reads, [], 'no stream object was read, not even to verify it');
    const receives = printed.filter((line) => line.includes('zfs receive'));
    assert.deepEqual(
      receives.map((line) => line.split(' | ')[0]),
      [
        `s3://fake/p: get p/${VM}/${VM}/daily-b1`,
        `s3://fake/p: get p/${VM}/${VM}/daily-b2`,
        `s3://fake/p: get p/${VM}/${VM}/data/daily-b1`,
        `s3://fake/p: get p/${VM}/${VM}/data/daily-b2`,
      ],
    );
    const unpack = pipelineText(decompressArgv('zstd'));
    assert.ok(
      receives.every((line) => line.includes(` | ${unpack} | zfs receive`)),
      `each object decompressed on its way:\n${receives.join('\n')}`,
    );
    assert.ok(receives[0]!.endsWith(`zfs receive -o origin=zones/${IMAGE}@snap-x zones/${VM}`), receives[0]);
  });

  it('from the bucket: a stream not as stored is refused before anything, still without reading one', async () => {
    const store = bucket();
    store.objects.get(`p/${VM}/${VM}/daily-b1`)!.body = Buffer.from('cut short');
    const source = new ObjectStoreSource(store, { prefix: 'p' } as S3Settings, silentLog);
    const local = smartos();
    await assert.rejects(restoreVm(request, { local, source, log: silentLog }), {
      name: 'RestoreError',
      message: new RegExp(
        `^refusing to restore backup set daily-b2: p/${VM}/${VM}/daily-b1: 9 bytes stored, \\d+ recorded`,
      ),
    });
    assert.deepEqual(store.reads, []);
    assert.deepEqual(local.skippedLines, [], 'nothing printed as done');
  });
});
