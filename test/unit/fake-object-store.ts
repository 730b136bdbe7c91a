import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { StreamProcess } from '../../src/host/host.js';
import { streamKey, streamMetadata, type Compression, type StoredStream } from '../../src/s3/keys.js';
import type { ObjectStore, StoredObject, UploadedPart } from '../../src/s3/store.js';

/**
 * An in-memory S3 with the multipart calls s3rver lacks (ListParts, abort), and failure injection:
 * for unit tests of the uploader's resume logic. Real uploads are tested against s3rver in the guest.
 */
export class FakeObjectStore implements ObjectStore {
  readonly label = 's3://fake/p';
  readonly objects = new Map<string, { body: Buffer; metadata: Record<string, string> }>();
  readonly uploads = new Map<string, { key: string; metadata: Record<string, string>; parts: Map<number, Buffer> }>();
  supportsListParts = true;
  partCalls = 0;
  /** Throw on this (1-based, counted over the store's life) UploadPart call. */
  failOnPartCall?: number;
  private nextId = 1;

  async list(prefix: string): Promise<StoredObject[]> {
    return [...this.objects].filter(([k]) => k.startsWith(prefix)).map(([key, o]) => ({ key, size: o.body.length }));
  }
  async head(key: string) {
    const o = this.objects.get(key);
    return o ? { size: o.body.length, metadata: o.metadata } : undefined;
  }
  async get(key: string): Promise<Readable> {
    return Readable.from([this.objects.get(key)!.body]);
  }
  async getText(key: string) {
    return this.objects.get(key)?.body.toString();
  }
  async putText(key: string, body: string) {
    this.objects.set(key, { body: Buffer.from(body), metadata: {} });
  }
  async delete(keys: readonly string[]) {
    for (const k of keys) this.objects.delete(k);
  }
  async replaceMetadata(key: string, metadata: Record<string, string>) {
    this.objects.get(key)!.metadata = metadata;
  }
  async createUpload(key: string, metadata: Record<string, string>) {
    const id = `u${this.nextId++}`;
    this.uploads.set(id, { key, metadata, parts: new Map() });
    return id;
  }
  async uploadPart(_key: string, uploadId: string, partNumber: number, body: Buffer) {
    this.partCalls += 1;
    if (this.partCalls === this.failOnPartCall) throw new Error('connection reset by peer');
    this.uploads.get(uploadId)!.parts.set(partNumber, Buffer.from(body));
    return `"${createHash('md5').update(body).digest('hex')}"`;
  }
  async listParts(_key: string, uploadId: string): Promise<UploadedPart[] | undefined> {
    if (!this.supportsListParts) return undefined;
    const upload = this.uploads.get(uploadId);
    if (!upload) return [];
    return [...upload.parts].map(([partNumber, body]) => ({
      partNumber,
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
    }));
  }
  async completeUpload(key: string, uploadId: string, parts: readonly UploadedPart[]) {
    const upload = this.uploads.get(uploadId)!;
    const body = Buffer.concat(
      [...parts].sort((a, b) => a.partNumber - b.partNumber).map((p) => upload.parts.get(p.partNumber)!),
    );
    this.objects.set(key, { body, metadata: upload.metadata });
    this.uploads.delete(uploadId);
  }
  async abortUpload(_key: string, uploadId: string) {
    this.uploads.delete(uploadId);
    return true;
  }
}

/** A finished "pipeline" that writes `data` in uneven chunks. */
export function bufferProcess(data: Buffer, exitCode = 0): StreamProcess {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 777_777) chunks.push(data.subarray(i, i + 777_777));
  return {
    stdin: new PassThrough(),
    stdout: Readable.from(chunks),
    done: Promise.resolve({
      host: 'local',
      command: 'zfs send',
      stdout: '',
      stderr: exitCode ? 'cannot send' : '',
      exitCode,
    }),
    kill: async () => undefined,
    onStderr: () => undefined,
  };
}

/** Stores a stream object as a backup run would (body `stream of <dataset>@<snapshot>`, its size and sha256 in the metadata). */
export function putStream(
  store: FakeObjectStore,
  vm: string,
  compression: Compression,
  stream: Omit<StoredStream, 'key' | 'vm' | 'compression' | 'encrypted' | 'sha256' | 'bytes'>,
): StoredStream {
  const body = Buffer.from(`stream of ${stream.dataset}@${stream.snapshot}`);
  const key = `p/${vm}/${stream.dataset.split('/').slice(1).join('/')}/${stream.snapshot}`;
  const stored: StoredStream = {
    ...stream,
    key,
    vm,
    compression,
    encrypted: false,
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
  };
  store.objects.set(key, { body, metadata: streamMetadata(stored) });
  return stored;
}

/** The SmartOS side's listing of a VM's root dataset with `snapshots` (guids g1, g2, … in order), as one run lists it. */
export function rootListing(root: string, snapshots: readonly string[]): string {
  const dataset = `${root}\tfilesystem\tg0\t5\t1700000000\t-\t-\t0\t0\toff\ton\toff\t-\t0\t1000\t100000000\t0\t0`;
  const lines = snapshots.map(
    (name, i) =>
      `${root}@${name}\tsnapshot\tg${i + 1}\t${i + 1}\t${1700000000 + i}\t-\t-\t0\t0\t-\t-\t-\t-\t0\t1000\t100000000\t0\t0`,
  );
  return `${[dataset, ...lines].join('\n')}\n`;
}

/** A stream of a VM's root dataset in the bucket (prefix `zonecopy`, zstd, not encrypted); createtxg from its guid gN. */
export function rootStream(vm: string, snapshot: string, guid: string, parent?: StoredStream['parent']): StoredStream {
  const dataset = `zones/${vm}`;
  return {
    key: streamKey('zonecopy', vm, dataset, snapshot),
    dataset,
    snapshot,
    guid,
    createtxg: Number(guid.slice(1)),
    parent,
    vm,
    compression: 'zstd',
    encrypted: false,
  };
}
