/**
 * The S3-compatible server the object-storage tests run against (s3rver in the guest, on its own
 * port and folder per test file) and a client of it for the tests' own reads.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { PROJECT, sh } from './harness.js';

// s3rver's fixed credentials, passed on to zonecopy by the harness (it passes AWS_*)
process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface TestBucket {
  endpoint: string;
  bucket: string;
  client: S3Client;
  /** Every key under `prefix`, sorted. */
  keys: (prefix: string) => Promise<string[]>;
  body: (key: string) => Promise<Buffer>;
  /** An object's metadata, or undefined when the bucket lacks it. */
  head: (key: string) => Promise<Record<string, string> | undefined>;
}

export function testBucket(port: number, bucket: string): TestBucket {
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    bucket,
    client,
    keys: async (prefix) => {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        out.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    body: async (key) => {
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await object.Body!.transformToByteArray());
    },
    head: async (key) => {
      try {
        return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};
      } catch {
        return undefined;
      }
    },
  };
}

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * Starts s3rver on `port` with an empty `directory` and `bucket`; `ready()` waits until it listens,
 * so a caller can make its fixtures meanwhile (s3rver loads hundreds of modules over 9p: about 15 s
 * in an idle guest, several times that beside a busy one).
 */
export async function startS3rver(
  port: number,
  directory: string,
  bucket: string,
): Promise<{ server: ChildProcess; ready: () => Promise<void> }> {
  await sh(`rm -rf ${directory} && mkdir -p ${directory}`);
  const server = spawn(
    'node',
    [
      '--openssl-legacy-provider',
      `${PROJECT}/node_modules/s3rver/bin/s3rver.js`,
      '-d',
      directory,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-s',
      '--configure-bucket',
      bucket,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let errors = '';
  server.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const ready = async () => {
    for (let i = 0; !(await listening(port)); i++) {
      assert.ok(server.exitCode === null, `s3rver exited ${server.exitCode}: ${errors}`);
      assert.ok(i < 900, `s3rver did not come up within 3 minutes: ${errors}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  return { server, ready };
}
