import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { backupVm } from '../../src/backup/backup-vm.js';
import { s3Schema } from '../../src/config/schema.js';
import type { StreamProcess } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { silentLog, type Log } from '../../src/log.js';
import { ObjectTarget } from '../../src/s3/backup.js';
import { streamFromMetadata, streamMetadata, type StoredStream } from '../../src/s3/keys.js';
import { uploadStream } from '../../src/s3/upload.js';
import { bufferProcess, FakeObjectStore, rootListing, rootStream } from './fake-object-store.js';
import { ScriptedHost, type Answers } from './scripted-host.js';
import { scratchDirectory } from './scratch.js';

const UUID = '0c7e4f52-3a9b-4d1e-8f26-5b8a1c9d2e70';
const ROOT = `zones/${UUID}`;
const MiB = 1024 * 1024;
const journals = scratchDirectory('zc-finish-journal-');

/** A scripted host whose pipelines put out a given stream: `interrupted` for the send of daily-2, a small one for any other. */
function streamingHost(answers: Answers, interrupted: () => StreamProcess) {
  const spawn = (pipeline: readonly Argv[]) =>
    pipeline[0]!.at(-1) === `${ROOT}@daily-2` ? interrupted() : bufferProcess(Buffer.from('the new stream'));
  return Object.assign(new ScriptedHost(answers), { spawn });
}

const listing = () => rootListing(ROOT, ['daily-1', 'daily-2']);
const stream = (snapshot: string, guid: string, parent?: StoredStream['parent']) =>
  rootStream(UUID, snapshot, guid, parent);

/**
 * The bucket holds daily-1; an earlier run's upload of daily-2 stopped after its first part. Then
 * one backup run, whose pipeline for daily-2 gives `interrupted`.
 */
async function runAfterInterruption(data: Buffer, interrupted: () => StreamProcess) {
  const bucket = new FakeObjectStore();
  const first = stream('daily-1', 'g1');
  bucket.objects.set(first.key, { body: Buffer.from('x'), metadata: streamMetadata(first) });
  const stateDirectory = journals();
  const daily2 = stream('daily-2', 'g2', { dataset: ROOT, snapshot: 'daily-1', guid: 'g1' });
  bucket.failOnPartCall = 2;
  await assert.rejects(
    uploadStream(bucket, {
      key: daily2.key,
      metadata: streamMetadata(daily2),
      fingerprint: 'f',
      estimatedBytes: data.length,
      concurrency: 1,
      pipeline: [['zfs', 'send', '-i', `${ROOT}@daily-1`, `${ROOT}@daily-2`]],
      spawn: () => bufferProcess(data),
      stateDirectory,
      log: silentLog,
    }),
  );
  const local = streamingHost((argv) => {
    if (argv[0] === 'vmadm')
      return { stdout: JSON.stringify({ uuid: UUID, brand: 'joyent', zfs_filesystem: ROOT, state: 'stopped' }) };
    if (argv[0] === 'zfs' && argv[1] === 'list') return { stdout: listing() };
    if (argv[0] === 'zfs' && argv[1] === 'get')
      return { stdout: `${ROOT}@daily-new\tguid\tg3\n${ROOT}@daily-new\tcreatetxg\t3\n` };
    if (argv[0] === 'imgadm' || argv[0] === 'zonecfg') return { exitCode: 1 };
    return undefined;
  }, interrupted);
  const said: string[] = [];
  const log: Log = { info: (m) => said.push(m), verbose: () => undefined, warn: (m) => said.push(m) };
  const s3 = s3Schema.parse({ bucket: 'zone-backups', stateDirectory, partConcurrency: 1 });
  const target = new ObjectTarget('s3', { local, store: bucket, s3, log });
  const result = await backupVm(
    UUID,
    { group: 'daily', name: 'new' },
    { local, targets: [target], log, now: () => new Date() },
  );
  return { result, bucket, said, daily2, stateDirectory };
}

describe('object storage: an upload an earlier run left unfinished', () => {
  it("is finished in the run and counted in its dataset's row as resumed; the new stream builds on it", async () => {
    const data = randomBytes(7 * MiB);
    const { result, bucket, said, daily2, stateDirectory } = await runAfterInterruption(data, () =>
      bufferProcess(data),
    );
    assert.deepEqual(result.errors, []);
    const [row] = result.datasets;
    assert.equal(row!.mode, 'resumed');
    assert.equal(row!.result, 'ok');
    assert.equal(row!.bytes, data.length + 'the new stream'.length, 'both streams counted');
    assert.ok(bucket.objects.get(daily2.key)!.body.equals(data));
    assert.ok(said.includes(`${daily2.key}: finished an interrupted upload (1 part(s) were already stored)`));
    const next = bucket.objects.get(stream('daily-new', 'g3').key)!;
    assert.deepEqual(streamFromMetadata('k', next.metadata)!.parent, {
      dataset: ROOT,
      snapshot: 'daily-2',
      guid: 'g2',
    });
    assert.deepEqual(readdirSync(stateDirectory), []);
  });

  it("that fails again fails its dataset's row, not the run, and the dataset's new stream is not sent", async () => {
    const data = randomBytes(7 * MiB);
    const { result, bucket, daily2, stateDirectory } = await runAfterInterruption(data, () => bufferProcess(data, 1));
    const [row] = result.datasets;
    assert.equal(row!.result, 'failed');
    assert.match(row!.error!, new RegExp(`finishing the interrupted upload of ${daily2.key} failed: .*exited 1`));
    assert.deepEqual(result.errors, []);
    assert.equal(bucket.objects.has(daily2.key), false);
    assert.equal(bucket.objects.has(stream('daily-new', 'g3').key), false, 'nothing built on a stream not there');
    assert.equal(readdirSync(stateDirectory).length, 1, 'its journal stays for the next run');
  });
});
