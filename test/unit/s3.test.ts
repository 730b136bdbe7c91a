import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { silentLog } from '../../src/log.js';
import { chainOf, type VmCatalog } from '../../src/s3/catalog.js';
import { streamFromMetadata, streamKey, streamMetadata, type StoredStream } from '../../src/s3/keys.js';
import { copySourcePath } from '../../src/s3/s3-store.js';
import { planS3Backup, type FinishUploadStep, type S3PlanInput, type UploadStep } from '../../src/s3/plan.js';
import { compressArgv, decompressArgv, decryptArgv, encryptArgv, parseSendEstimate } from '../../src/s3/streams.js';
import { sendArgv } from '../../src/zfs/commands.js';
import { MIN_PART_SIZE, partSizeFor, uploadStream, type Journal, type UploadRequest } from '../../src/s3/upload.js';
import type { DatasetState } from '../../src/zfs/list.js';
import { bufferProcess, FakeObjectStore } from './fake-object-store.js';
import { scratchDirectory } from './scratch.js';

const MiB = 1024 * 1024;
const journals = scratchDirectory('zc-journal-');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function request(data: Buffer, overrides: Partial<UploadRequest> = {}): UploadRequest {
  return {
    key: 'p/vm/u/daily-1',
    metadata: { 'zc-guid': '1' },
    fingerprint: 'f',
    estimatedBytes: data.length,
    concurrency: 3,
    pipeline: [['zfs', 'send', 'zones/u@daily-1']],
    spawn: () => bufferProcess(data),
    stateDirectory: journals(),
    log: silentLog,
    ...overrides,
  };
}

describe('S3 multipart upload', () => {
  it('sizes parts at max(5 MiB, estimate / 9,999) in whole MiB', () => {
    assert.equal(partSizeFor(0), MIN_PART_SIZE);
    assert.equal(partSizeFor(10 * 1024 * MiB), 5 * MiB);
    const huge = partSizeFor(2 * 1024 ** 4);
    assert.ok(huge * 9999 >= 2 * 1024 ** 4 * 1.1 && huge % MiB === 0, String(huge));
  });

  it('stores the stream as one object with its sha256, and leaves no journal', async () => {
    const store = new FakeObjectStore();
    const data = randomBytes(12 * MiB + 123);
    const req = request(data);
    const result = await uploadStream(store, req);
    assert.equal(result.bytes, data.length);
    assert.equal(result.sha256, sha(data));
    assert.ok(store.objects.get(req.key)!.body.equals(data));
    assert.equal(store.partCalls, 3);
    assert.deepEqual(readdirSync(req.stateDirectory), []);
  });

  it('an upload cut off after some parts leaves no object, and the next run sends only the missing parts', async () => {
    const store = new FakeObjectStore();
    const data = randomBytes(23 * MiB);
    const req = request(data, { concurrency: 1 });
    store.failOnPartCall = 3;
    await assert.rejects(uploadStream(store, req), /connection reset/);
    assert.equal(store.objects.has(req.key), false, 'a broken upload must not look like an object');
    assert.equal(readdirSync(req.stateDirectory).length, 1, 'the journal stays for the next run');
    const before = store.partCalls;
    const result = await uploadStream(store, req);
    assert.equal(result.resumedParts, 2);
    assert.equal(store.partCalls - before, 3, 'parts 3, 4 and 5 only');
    assert.equal(result.sha256, sha(data));
    assert.ok(store.objects.get(req.key)!.body.equals(data));
    assert.equal(store.uploads.size, 0);
  });

  it('trusts its journal when the server cannot list parts (s3rver), and checks each part by MD5', async () => {
    const store = new FakeObjectStore();
    store.supportsListParts = false;
    const data = randomBytes(16 * MiB);
    const req = request(data, { concurrency: 1 });
    store.failOnPartCall = 2;
    await assert.rejects(uploadStream(store, req));
    const result = await uploadStream(store, req);
    assert.equal(result.resumedParts, 1);
    assert.ok(store.objects.get(req.key)!.body.equals(data));
  });

  it('a stream that comes out different on the next run aborts the old upload and starts afresh', async () => {
    const store = new FakeObjectStore();
    const first = randomBytes(16 * MiB);
    const req = request(first, { concurrency: 1 });
    store.failOnPartCall = 3;
    await assert.rejects(uploadStream(store, req));
    const second = randomBytes(16 * MiB);
    const result = await uploadStream(store, { ...req, spawn: () => bufferProcess(second) });
    assert.equal(result.resumedParts, 0);
    assert.ok(store.objects.get(req.key)!.body.equals(second));
    assert.equal(store.uploads.size, 0, 'the stale upload was aborted');
  });

  it('a failing zfs send completes nothing', async () => {
    const store = new FakeObjectStore();
    const data = randomBytes(6 * MiB);
    const req = request(data, { spawn: () => bufferProcess(data, 1) });
    await assert.rejects(uploadStream(store, req), /exited 1/);
    assert.equal(store.objects.size, 0);
  });

  it('a journal whose upload the server forgot starts a new upload', async () => {
    const store = new FakeObjectStore();
    const data = randomBytes(11 * MiB);
    const req = request(data, { concurrency: 1 });
    store.failOnPartCall = 2;
    await assert.rejects(uploadStream(store, req));
    store.uploads.clear();
    const result = await uploadStream(store, req);
    assert.equal(result.resumedParts, 0);
    assert.ok(store.objects.get(req.key)!.body.equals(data));
  });
});

const snap = (name: string, guid: string, createtxg: number) => ({
  name,
  guid,
  createtxg,
  creation: createtxg,
  userrefs: 0,
});
const state = (name: string, snaps: ReturnType<typeof snap>[], origin?: string): DatasetState => ({
  name,
  type: 'filesystem',
  guid: `g-${name}`,
  origin,
  snapshots: snaps,
});
const stored = (
  dataset: string,
  snapshot: string,
  guid: string,
  createtxg: number,
  parent?: StoredStream['parent'],
): StoredStream & { size: number } => ({
  key: streamKey('p', 'vm', dataset, snapshot),
  dataset,
  snapshot,
  guid,
  createtxg,
  parent,
  vm: 'vm',
  compression: 'zstd',
  encrypted: false,
  size: 1,
  sha256: 'x',
  bytes: 1,
});
const catalogOf = (...streams: Array<StoredStream & { size: number }>): VmCatalog => ({
  vm: 'vm',
  streams: new Map(streams.map((s) => [s.key, s])),
  sets: [],
  unknown: [],
});

function plan(local: DatasetState[], catalog: VmCatalog, extra: Partial<S3PlanInput> = {}) {
  return planS3Backup({
    vm: 'vm',
    prefix: 'p',
    datasets: [local[0]!.name],
    local: new Map(local.map((d) => [d.name, d])),
    catalog,
    pending: [],
    snapshot: 'daily-9',
    group: 'daily',
    compression: 'zstd',
    encrypted: false,
    ...extra,
  });
}
const uploads = (steps: ReturnType<typeof plan>['steps']) => steps.filter((s): s is UploadStep => s.kind === 'upload');

describe('S3 backup planning', () => {
  it('sends in full when the bucket has nothing, as one object under <prefix>/<vm>/<dataset without pool>/<snapshot>', () => {
    const p = plan([state('zones/vm', [snap('daily-1', 'a', 1)])], catalogOf());
    const [u] = uploads(p.steps);
    assert.deepEqual(u!.send, { to: 'zones/vm@daily-9' });
    assert.equal(u!.stream.key, 'p/vm/vm/daily-9');
    assert.equal(u!.stream.parent, undefined);
  });

  it('sends incrementally from the newest local snapshot whose guid the bucket has (not its name)', () => {
    const local = state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'b', 2), snap('daily-3', 'c', 3)]);
    const catalog = catalogOf(
      stored('zones/vm', 'daily-1', 'a', 1),
      stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' }),
      stored('zones/vm', 'daily-3', 'OTHER', 3),
    );
    const [u] = uploads(plan([local], catalog).steps);
    assert.deepEqual(u!.send, { from: 'zones/vm@daily-2', to: 'zones/vm@daily-9' });
    assert.deepEqual(u!.stream.parent, { dataset: 'zones/vm', snapshot: 'daily-2', guid: 'b' });
  });

  it('does not build on a stream whose chain is broken', () => {
    const local = state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'b', 2)]);
    const catalog = catalogOf(
      stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' }),
    );
    assert.match(chainOf(catalog, catalog.streams.get('p/vm/vm/daily-2')!).missing!, /daily-1/);
    const p = plan([local], catalog);
    assert.deepEqual(uploads(p.steps)[0]!.send, { to: 'zones/vm@daily-9' });
    assert.match(p.warnings.join(), /missing parent/);
  });

  it("stores a clone's origin once and sends the clone incrementally from it", () => {
    const image = state('zones/img', [snap('final', 'img', 1)]);
    const clone = state('zones/vm', [], 'zones/img@final');
    const p = plan([clone, image], catalogOf());
    const [origin, vm] = uploads(p.steps);
    assert.deepEqual(origin!.send, { to: 'zones/img@final' });
    assert.equal(origin!.carriesImage, true);
    assert.equal(origin!.stream.key, 'p/vm/img/final');
    assert.deepEqual(vm!.send, { from: 'zones/img@final', to: 'zones/vm@daily-9' });
    const again = plan([clone, image], catalogOf(stored('zones/img', 'final', 'img', 1)));
    assert.equal(uploads(again.steps).length, 1, 'the origin is stored already');
  });

  it('rotation keeps the newest N and every stream they depend on', () => {
    const local = state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'b', 2), snap('daily-3', 'c', 3)]);
    const chain = catalogOf(
      stored('zones/vm', 'daily-1', 'a', 1),
      stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' }),
      stored('zones/vm', 'daily-3', 'c', 3, { dataset: 'zones/vm', snapshot: 'daily-2', guid: 'b' }),
    );
    assert.equal(
      plan([local], chain, { remoteRetention: { count: 2 } }).steps.some(
        (s) => s.kind === 'delete-objects' && s.keys.length > 0,
      ),
      false,
      'an incremental chain keeps its full stream',
    );
    const restarted = catalogOf(
      stored('zones/vm', 'daily-1', 'a', 1),
      stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' }),
      stored('zones/vm', 'daily-3', 'c', 3),
    );
    const p = plan([local], restarted, { remoteRetention: { count: 2 } });
    const thinning = p.steps.find((s) => s.kind === 'delete-objects');
    assert.deepEqual(thinning?.keys, ['p/vm/vm/daily-1', 'p/vm/vm/daily-2']);
    assert.deepEqual(thinning?.kept, [
      { name: 'p/vm/vm/daily-3', why: 'one of the newest 2' },
      { name: 'p/vm/vm/daily-9', why: "this run's stream: the newest" },
    ]);
  });

  it('fullEvery starts a new chain once a chain is that long', () => {
    const local = state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'b', 2)]);
    const catalog = catalogOf(
      stored('zones/vm', 'daily-1', 'a', 1),
      stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' }),
    );
    assert.deepEqual(uploads(plan([local], catalog, { fullEvery: 3 }).steps)[0]!.send.from, 'zones/vm@daily-2');
    assert.deepEqual(uploads(plan([local], catalog, { fullEvery: 2 }).steps)[0]!.send, { to: 'zones/vm@daily-9' });
  });
});

describe('S3 object metadata', () => {
  it("names a copy's source with the timestamp's colons as they are, everything else encoded", () => {
    // s3rver reads x-amz-copy-source with decodeURI, which would leave %3A in the key
    assert.equal(
      copySourcePath('p/vm/data/daily-2026-11-30T21:48:16.123Z'),
      'p/vm/data/daily-2026-11-30T21:48:16.123Z',
    );
    assert.equal(copySourcePath("p/vm/da ta'%/x?y#z"), "p/vm/da%20ta'%25/x%3Fy%23z");
  });

  it('round-trips names with spaces, quotes and newlines through ASCII headers', () => {
    const s = stored("zones/vm/da ta'\n", 'daily-1', '123', 7, { dataset: 'zones/img', snapshot: 'final', guid: '9' });
    const m = streamMetadata(s);
    for (const v of Object.values(m)) assert.match(v, /^[\x20-\x7e]*$/);
    const back = streamFromMetadata(
      s.key,
      Object.fromEntries(Object.entries(m).map(([k, v]) => [k.toUpperCase(), v])),
    )!;
    assert.equal(back.dataset, s.dataset);
    assert.deepEqual(back.parent, s.parent);
    assert.equal(back.createtxg, 7);
    assert.equal(back.sha256, 'x');
  });

  it('sends encrypted datasets raw and filters streams through zstd and gpg in that order, and back', () => {
    assert.deepEqual(sendArgv({ to: 'zones/u@s', raw: true }), ['zfs', 'send', '-w', 'zones/u@s']);
    assert.deepEqual(sendArgv({ from: 'zones/u@a', to: 'zones/u@b' }), ['zfs', 'send', '-i', 'zones/u@a', 'zones/u@b']);
    const up = [...compressArgv('zstd'), ...encryptArgv('ops@example.com', { gpgPath: 'gpg' })];
    assert.deepEqual(
      up.map((a) => a[0]),
      ['zstd', 'gpg'],
    );
    assert.ok(up[1]!.includes('--recipient') && up[1]!.includes('ops@example.com'));
    assert.deepEqual(
      [...decryptArgv(true, { gpgPath: 'gpg' }), ...decompressArgv('zstd')].map((a) => a[0]),
      ['gpg', 'zstd'],
    );
    assert.deepEqual(
      [
        ...compressArgv('none'),
        ...encryptArgv(undefined, { gpgPath: 'gpg' }),
        ...decryptArgv(false, { gpgPath: 'gpg' }),
        ...decompressArgv('none'),
      ],
      [],
    );
  });

  it('reads the estimate from zfs send -nP', () => {
    assert.equal(parseSendEstimate('full\tzones/vm@daily-1\t1048576\nsize\t1048576\n'), 1048576);
    assert.equal(parseSendEstimate('nothing'), undefined);
  });
});

describe('S3 backup planning: encrypted datasets', () => {
  it('sends them raw in full, incrementally and as a clone with its origin; plain ones as they are', () => {
    const secret = { encrypted: true, encryptionRoot: 'zones' };
    const image = { ...state('zones/img', [snap('final', 'img', 1)]), ...secret };
    const clone = { ...state('zones/vm', [snap('daily-1', 'a', 2)], 'zones/img@final'), ...secret };
    const sends = (p: ReturnType<typeof plan>) => uploads(p.steps).map((u) => u.send);
    assert.deepEqual(sends(plan([clone, image], catalogOf())), [
      { to: 'zones/img@final', raw: true },
      { from: 'zones/img@final', to: 'zones/vm@daily-9', raw: true },
    ]);
    assert.deepEqual(sends(plan([clone, image], catalogOf(stored('zones/vm', 'daily-1', 'a', 2)))), [
      { from: 'zones/vm@daily-1', to: 'zones/vm@daily-9', raw: true },
    ]);
    assert.deepEqual(sends(plan([{ ...clone, origin: undefined }], catalogOf())), [
      { to: 'zones/vm@daily-9', raw: true },
    ]);
    assert.deepEqual(sends(plan([{ ...clone, origin: undefined, encrypted: false }], catalogOf())), [
      { to: 'zones/vm@daily-9' },
    ]);
  });
});

/** What an earlier run left on this host for an upload of `stream` it did not finish. */
const journalOf = (stream: StoredStream): Journal => ({
  key: stream.key,
  uploadId: 'u1',
  pipeline: [['zfs', 'send', `${stream.dataset}@${stream.snapshot}`]],
  metadata: streamMetadata(stream),
  estimatedBytes: 1,
  fingerprint: 'f',
  partSize: MIN_PART_SIZE,
  parts: [],
});

describe('S3 backup planning: uploads an earlier run left unfinished', () => {
  const local = state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'b', 2)]);
  const bucket = () => catalogOf(stored('zones/vm', 'daily-1', 'a', 1));
  const daily2 = stored('zones/vm', 'daily-2', 'b', 2, { dataset: 'zones/vm', snapshot: 'daily-1', guid: 'a' });

  it('finishes one first and sends the new snapshot incrementally from its stream', () => {
    const p = plan([local], bucket(), { pending: [journalOf(daily2)] });
    const finish = p.steps[0] as FinishUploadStep;
    assert.equal(finish.kind, 'finish-upload');
    assert.equal(finish.vmDataset, 'zones/vm');
    assert.equal(finish.carriesImage, false);
    assert.equal(finish.stream.key, daily2.key);
    assert.deepEqual(uploads(p.steps)[0]!.send, { from: 'zones/vm@daily-2', to: 'zones/vm@daily-9' });
    assert.equal(p.catalog.streams.get(daily2.key)?.guid, 'b', 'the bucket as planned holds the finished stream');
    assert.deepEqual(p.warnings, []);
  });

  it('without one, plans no finish or abort and builds on what the bucket holds', () => {
    const p = plan([local], bucket());
    assert.deepEqual(
      p.steps.map((s) => s.kind),
      ['upload'],
    );
    assert.deepEqual(uploads(p.steps)[0]!.send, { from: 'zones/vm@daily-1', to: 'zones/vm@daily-9' });
  });

  it('abandons one whose snapshot is gone, or is another snapshot of that name, or whose base is gone', () => {
    const cases: Array<[string, DatasetState, RegExp]> = [
      ['gone', state('zones/vm', [snap('daily-1', 'a', 1)]), /daily-2: the snapshot of an unfinished upload is gone/],
      [
        'made again',
        state('zones/vm', [snap('daily-1', 'a', 1), snap('daily-2', 'OTHER', 2)]),
        /daily-2: the snapshot of an unfinished upload is gone/,
      ],
      [
        'base gone',
        state('zones/vm', [snap('daily-2', 'b', 2)]),
        /zones\/vm@daily-1, which an unfinished upload is incremental from, is gone/,
      ],
    ];
    for (const [name, here, warning] of cases) {
      const p = plan([here], bucket(), { pending: [journalOf(daily2)] });
      assert.deepEqual(p.steps[0], { kind: 'abandon-upload', journal: journalOf(daily2) }, name);
      assert.equal(p.steps.filter((s) => s.kind === 'finish-upload').length, 0, name);
      assert.match(p.warnings.join('\n'), warning, name);
      assert.equal(p.catalog.streams.has(daily2.key), false, name);
    }
  });

  it("counts a clone's origin in the clone's row and does not store that origin again", () => {
    const image = state('zones/img', [snap('final', 'img', 1)]);
    const clone = state('zones/vm', [], 'zones/img@final');
    const origin = stored('zones/img', 'final', 'img', 1);
    const p = plan([clone, image], catalogOf(), { pending: [journalOf(origin)] });
    assert.deepEqual(
      p.steps.map((s) => s.kind),
      ['finish-upload', 'upload'],
    );
    const finish = p.steps[0] as FinishUploadStep;
    assert.equal(finish.vmDataset, 'zones/vm');
    assert.equal(finish.carriesImage, true);
    assert.deepEqual(uploads(p.steps)[0]!.send, { from: 'zones/img@final', to: 'zones/vm@daily-9' });
  });
});
