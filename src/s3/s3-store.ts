import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3Settings } from './settings.js';
import type { ObjectStore, StoredObject, UploadedPart } from './store.js';

/** ObjectStore over the AWS SDK: AWS itself, or any S3-compatible server given as `endpoint`. */
export class S3Store implements ObjectStore {
  readonly label: string;
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.label = `s3://${settings.bucket}/${settings.prefix}`;
    // The SDK release we ship runs on Node 20; its warning about future releases would land in every cron mail.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    // The SDK's credential chain reads these files only through its environment; an operator's own AWS_* settings win.
    if (settings.credentialsFile) process.env.AWS_SHARED_CREDENTIALS_FILE ??= settings.credentialsFile;
    if (settings.configFile) process.env.AWS_CONFIG_FILE ??= settings.configFile;
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
      profile: settings.profile,
      // Stream bodies sent aws-chunked are stored with their framing by some S3-compatible
      // servers; checksums only where S3 requires them keeps every provider byte-exact.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 5,
    });
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  async head(key: string): Promise<{ size: number; metadata: Record<string, string> } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, metadata: out.Metadata ?? {} };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap('head', key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    const out = await this.call('get', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
    );
    return out.Body as Readable;
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await out.Body!.transformToString();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap('get', key, error);
    }
  }

  async putText(key: string, body: string): Promise<void> {
    await this.call('put', key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }),
      ),
    );
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.call('delete', batch[0]!, () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      if (out.Errors?.length)
        throw new Error(`${this.label}: deleting ${out.Errors[0]!.Key} failed: ${out.Errors[0]!.Message}`);
    }
  }

  async replaceMetadata(key: string, metadata: Record<string, string>): Promise<void> {
    await this.call('copy', key, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${copySourcePath(key)}`,
          Metadata: metadata,
          MetadataDirective: 'REPLACE',
        }),
      ),
    );
  }

  async createUpload(key: string, metadata: Record<string, string>): Promise<string> {
    const out = await this.call('create upload', key, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: metadata })),
    );
    return out.UploadId!;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const out = await this.call(`upload part ${partNumber}`, key, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      ),
    );
    return out.ETag!;
  }

  async listParts(key: string, uploadId: string): Promise<UploadedPart[] | undefined> {
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
        );
        for (const p of page.Parts ?? []) parts.push({ partNumber: p.PartNumber!, etag: p.ETag! });
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
      return parts;
    } catch (error) {
      if (isUnsupported(error)) return undefined;
      if (isNotFound(error)) return [];
      throw this.wrap('list parts', key, error);
    }
  }

  async completeUpload(key: string, uploadId: string, parts: readonly UploadedPart[]): Promise<void> {
    await this.call('complete upload', key, () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: [...parts]
              .sort((a, b) => a.partNumber - b.partNumber)
              .map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
          },
        }),
      ),
    );
  }

  async abortUpload(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return true;
      if (isUnsupported(error)) return false;
      throw this.wrap('abort upload', key, error);
    }
  }

  private async call<T>(what: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.wrap(what, key, error);
    }
  }

  private wrap(what: string, key: string, error: unknown): Error {
    const e = error as Error & { code?: string };
    const detail =
      error instanceof S3ServiceException
        ? `${error.name}: ${error.message}`
        : e.code === 'ECONNREFUSED'
          ? `connection refused (${e.message})`
          : e.message;
    return new Error(`${this.label}: ${what} ${key} failed: ${detail}`);
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'NoSuchUpload' || e.$metadata?.httpStatusCode === 404
  );
}

/** Emulators answer MethodNotAllowed / NotImplemented for ListParts and abort. */
function isUnsupported(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NotImplemented' ||
    e.name === 'MethodNotAllowed' ||
    e.$metadata?.httpStatusCode === 405 ||
    e.$metadata?.httpStatusCode === 501
  );
}

/**
 * A key as `x-amz-copy-source` takes it: URL-encoded, but `/` and the `:` of zonecopy's timestamps
 * left as they are (RFC 3986 allows both in a path), since some servers decode it with JavaScript's
 * decodeURI, which leaves `%3A` encoded (s3rver's object controller), while S3 reads either.
 */
export function copySourcePath(key: string): string {
  return encodeURIComponent(key).replaceAll('%2F', '/').replaceAll('%3A', ':');
}
