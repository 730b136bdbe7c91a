import type { Readable } from 'node:stream';

/**
 * The few object-storage operations zonecopy needs, behind one small interface (as restic keeps
 * its backends): the S3 implementation talks to AWS or any S3-compatible server; tests can put a
 * fake here for what emulators do not do (ListParts, abort).
 */
export interface ObjectStore {
  /** `s3://bucket/prefix`, for messages. */
  readonly label: string;
  list(prefix: string): Promise<StoredObject[]>;
  head(key: string): Promise<{ size: number; metadata: Record<string, string> } | undefined>;
  get(key: string): Promise<Readable>;
  getText(key: string): Promise<string | undefined>;
  putText(key: string, body: string): Promise<void>;
  /** Deletes keys (in batches); keys that do not exist are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Replaces an object's user metadata (a copy onto itself). */
  replaceMetadata(key: string, metadata: Record<string, string>): Promise<void>;
  createUpload(key: string, metadata: Record<string, string>): Promise<string>;
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string>;
  /** The parts the server holds for an upload; undefined when the server cannot say. */
  listParts(key: string, uploadId: string): Promise<UploadedPart[] | undefined>;
  completeUpload(key: string, uploadId: string, parts: readonly UploadedPart[]): Promise<void>;
  /** Throws only when the upload still exists afterwards; an unsupported abort is reported as false. */
  abortUpload(key: string, uploadId: string): Promise<boolean>;
}

export interface StoredObject {
  key: string;
  size: number;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/** Objects whose size S3's single CopyObject accepts (5 GiB); larger ones keep their creation metadata. */
export const MAX_COPY_BYTES = 5 * 1024 ** 3;
