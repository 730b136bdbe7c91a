import type { Readable } from 'node:stream';
import type { ObjectStore, StoredObject, UploadedPart } from './store.js';

/**
 * The object store under --dry-run: reads go to the real store, so the plan is the real one;
 * every write, delete and multipart call is printed as what it would do, and nothing changes.
 */
export class DryRunStore implements ObjectStore {
  readonly label: string;

  constructor(
    private readonly store: ObjectStore,
    private readonly print: (line: string) => void,
  ) {
    this.label = store.label;
  }

  list(prefix: string): Promise<StoredObject[]> {
    return this.store.list(prefix);
  }

  head(key: string): Promise<{ size: number; metadata: Record<string, string> } | undefined> {
    return this.store.head(key);
  }

  get(key: string): Promise<Readable> {
    return this.store.get(key);
  }

  getText(key: string): Promise<string | undefined> {
    return this.store.getText(key);
  }

  listParts(key: string, uploadId: string): Promise<UploadedPart[] | undefined> {
    return this.store.listParts(key, uploadId);
  }

  async putText(key: string, body: string): Promise<void> {
    this.skipped(`put ${key} (${Buffer.byteLength(body)} bytes)`);
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) this.skipped(`delete ${keys.length} object(s): ${keys.join(' ')}`);
  }

  async replaceMetadata(key: string): Promise<void> {
    this.skipped(`replace the metadata of ${key}`);
  }

  async createUpload(key: string): Promise<string> {
    this.skipped(`start a multipart upload of ${key}`);
    return 'dry-run';
  }

  async uploadPart(key: string, _uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    this.skipped(`upload part ${partNumber} of ${key} (${body.length} bytes)`);
    return '"dry-run"';
  }

  async completeUpload(key: string, _uploadId: string, parts: readonly UploadedPart[]): Promise<void> {
    this.skipped(`complete the upload of ${key} from ${parts.length} part(s)`);
  }

  async abortUpload(key: string, uploadId: string): Promise<boolean> {
    this.skipped(`abort the upload ${uploadId} of ${key}`);
    return true;
  }

  private skipped(description: string): void {
    this.print(`[dry-run] ${this.label}: ${description}`);
  }
}
