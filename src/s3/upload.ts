import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamProcess } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import { startStream } from '../transfer/progress.js';
import type { ObjectStore, UploadedPart } from './store.js';

const MiB = 1024 * 1024;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PARTS = 10_000;

/**
 * max(5 MiB, estimate / 9,999), in whole MiB, with headroom for streams that compression grows;
 * so even a stream the estimate undersold by 10% fits in S3's 10,000 parts.
 */
export function partSizeFor(estimatedBytes: number): number {
  const needed = Math.ceil((estimatedBytes * 1.1) / (MAX_PARTS - 1));
  return Math.max(MIN_PART_SIZE, Math.ceil(needed / MiB) * MiB);
}

/** What the SmartOS host remembers of an unfinished multipart upload, so the next run can resume it. */
export interface Journal {
  key: string;
  uploadId: string;
  /** The producing pipeline and the object's metadata, so a later run can finish the upload by itself. */
  pipeline: Argv[];
  metadata: Record<string, string>;
  estimatedBytes: number;
  /** Identifies the stream (send arguments, compression): a different stream never reuses parts. */
  fingerprint: string;
  partSize: number;
  parts: Array<UploadedPart & { md5: string; size: number }>;
}

export interface UploadRequest {
  key: string;
  metadata: Record<string, string>;
  fingerprint: string;
  estimatedBytes: number;
  concurrency: number;
  /** zfs send | compress | encrypt, started afresh by `spawn` for every attempt. */
  pipeline: Argv[];
  spawn: (pipeline: readonly Argv[]) => StreamProcess;
  stateDirectory: string;
  log: Log;
}

export interface UploadResult {
  bytes: number;
  sha256: string;
  seconds: number;
  /** Parts found already uploaded by an earlier, interrupted run and not sent again. */
  resumedParts: number;
}

export class StreamChangedError extends Error {
  override name = 'StreamChangedError';
}

/**
 * Streams the producer's output into one multipart upload, `concurrency` parts in flight, memory
 * bounded by part size × (concurrency + 1). Each finished part is written to a journal; after a
 * failure the next call regenerates the stream, checks every already-uploaded part's MD5 against
 * the journal and uploads only the rest. A stream that comes out different aborts the old upload
 * and starts a new one. Until CompleteMultipartUpload no object exists, so a broken upload never
 * looks like a complete one.
 */
export async function uploadStream(store: ObjectStore, request: UploadRequest): Promise<UploadResult> {
  try {
    return await attempt(store, request);
  } catch (error) {
    if (!(error instanceof StreamChangedError)) throw error;
    request.log.warn(`${store.label}: ${error.message}; starting ${request.key} afresh`);
    return attempt(store, request);
  }
}

async function attempt(store: ObjectStore, request: UploadRequest): Promise<UploadResult> {
  const started = Date.now();
  const journalPath = journalFile(request.stateDirectory, store.label, request.key);
  let journal = await resumableJournal(store, request, journalPath);
  const resumable = new Map(journal?.parts.map((p) => [p.partNumber, p]));
  if (!journal) {
    const uploadId = await store.createUpload(request.key, request.metadata);
    journal = {
      key: request.key,
      uploadId,
      pipeline: request.pipeline,
      metadata: request.metadata,
      estimatedBytes: request.estimatedBytes,
      fingerprint: request.fingerprint,
      partSize: partSizeFor(request.estimatedBytes),
      parts: [],
    };
    saveJournal(journalPath, journal);
  }
  const current = journal;
  const producer = request.spawn(request.pipeline);
  producer.stdin.end();
  const progress = startStream({
    uuid: metadataValue(request.metadata, 'zc-vm'),
    dataset: metadataValue(request.metadata, 'zc-dataset') ?? request.key,
    target: store.label,
    estimatedBytes: request.estimatedBytes > 0 ? request.estimatedBytes : undefined,
  });
  const sha256 = createHash('sha256');
  let bytes = 0;
  let partNumber = 0;
  let resumedParts = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;

  const flush = async (body: Buffer) => {
    partNumber += 1;
    if (partNumber > MAX_PARTS)
      throw new Error(
        `${request.key}: the stream needs more than ${MAX_PARTS} parts of ${current.partSize} bytes (estimate ${request.estimatedBytes} bytes was too low)`,
      );
    sha256.update(body);
    bytes += body.length;
    const md5 = createHash('md5').update(body).digest('hex');
    const earlier = resumable.get(partNumber);
    if (earlier) {
      if (earlier.md5 !== md5 || earlier.size !== body.length) {
        await dropUpload(store, current, journalPath);
        throw new StreamChangedError(
          `part ${partNumber} of the interrupted upload differs from the stream now (not a deterministic stream, or the snapshot changed)`,
        );
      }
      resumedParts += 1;
      return;
    }
    while (inFlight.size >= request.concurrency) await Promise.race(inFlight);
    if (failure) throw failure;
    const n = partNumber;
    const task = store.uploadPart(request.key, current.uploadId, n, body).then(
      (etag) => {
        current.parts.push({ partNumber: n, etag, md5, size: body.length });
        saveJournal(journalPath, current);
      },
      (error: Error) => {
        failure ??= error;
      },
    );
    const tracked = task.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };

  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of producer.stdout as AsyncIterable<Buffer>) {
      progress.add(chunk.length);
      let rest = chunk;
      while (pendingBytes + rest.length >= current.partSize) {
        const take = current.partSize - pendingBytes;
        pending.push(rest.subarray(0, take));
        await flush(Buffer.concat(pending));
        rest = rest.subarray(take);
        pending = [];
        pendingBytes = 0;
      }
      if (rest.length > 0) {
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    }
    if (pendingBytes > 0 || partNumber === 0) await flush(Buffer.concat(pending));
    await Promise.all(inFlight);
    if (failure) throw failure;
    const produced = await producer.done;
    if (produced.exitCode !== 0)
      throw new Error(
        `${produced.command} exited ${produced.exitCode} on ${produced.host}: ${produced.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      );
    if (resumable.size > partNumber) {
      await dropUpload(store, current, journalPath);
      throw new StreamChangedError(
        `the interrupted upload had ${resumable.size} parts, the stream now only ${partNumber}`,
      );
    }
    await store.completeUpload(
      request.key,
      current.uploadId,
      current.parts.filter((p) => p.partNumber <= partNumber),
    );
    rmSync(journalPath, { force: true });
    return { bytes, sha256: sha256.digest('hex'), seconds: (Date.now() - started) / 1000, resumedParts };
  } catch (error) {
    producer.stdout.destroy();
    await producer.kill();
    await Promise.allSettled(inFlight);
    throw error;
  } finally {
    progress.end();
  }
}

/** One value of the object's metadata (URI-encoded, see keys.ts streamMetadata). */
function metadataValue(metadata: Record<string, string>, key: string): string | undefined {
  const raw = metadata[key];
  if (!raw) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** A journal for this key and stream whose upload the server still has, or undefined (stale ones are aborted). */
async function resumableJournal(
  store: ObjectStore,
  request: UploadRequest,
  path: string,
): Promise<Journal | undefined> {
  let journal: Journal;
  try {
    journal = JSON.parse(readFileSync(path, 'utf8')) as Journal;
  } catch {
    return undefined;
  }
  if (journal.key !== request.key || journal.fingerprint !== request.fingerprint) {
    await dropUpload(store, journal, path);
    return undefined;
  }
  const onServer = await store.listParts(journal.key, journal.uploadId);
  if (onServer === undefined) {
    request.log.verbose(`${store.label} cannot list parts; trusting the journal of ${journal.key}`);
    return journal;
  }
  const etags = new Map(onServer.map((p) => [p.partNumber, p.etag]));
  if (onServer.length === 0 && journal.parts.length > 0) {
    // the server forgot the upload (expired by a lifecycle rule, or aborted): start again
    rmSync(path, { force: true });
    return undefined;
  }
  journal.parts = journal.parts.filter((p) => etags.get(p.partNumber) === p.etag);
  return journal;
}

async function dropUpload(store: ObjectStore, journal: Journal, path: string): Promise<void> {
  await store.abortUpload(journal.key, journal.uploadId).catch(() => false);
  rmSync(path, { force: true });
}

/** Unfinished uploads recorded in `directory` whose keys start with `prefix`. */
export function pendingJournals(directory: string, prefix: string): Journal[] {
  let names: string[];
  try {
    names = readdirSync(directory).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    try {
      const journal = JSON.parse(readFileSync(join(directory, name), 'utf8')) as Journal;
      return journal.key?.startsWith(prefix) && Array.isArray(journal.pipeline) ? [journal] : [];
    } catch {
      return [];
    }
  });
}

/** Gives up an unfinished upload for good (its snapshot is gone). */
export async function abandonUpload(store: ObjectStore, directory: string, journal: Journal): Promise<void> {
  await dropUpload(store, journal, journalFile(directory, store.label, journal.key));
}

export function journalFile(directory: string, store: string, key: string): string {
  return join(directory, `${createHash('sha256').update(`${store}\n${key}`).digest('hex').slice(0, 32)}.json`);
}

function saveJournal(path: string, journal: Journal): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(journal));
  renameSync(`${path}.tmp`, path);
}
