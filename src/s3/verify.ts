import { createHash } from 'node:crypto';
import type { StoredStream } from './keys.js';
import type { ObjectStore } from './store.js';

/** Downloads a stored stream and compares its bytes with the sha256 recorded when it was stored. */
export async function verifyStream(store: ObjectStore, stream: StoredStream): Promise<string | undefined> {
  if (!stream.sha256) return `${stream.key}: no sha256 recorded (its upload never completed its record)`;
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await store.get(stream.key)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const actual = hash.digest('hex');
  if (actual !== stream.sha256 || (stream.bytes !== undefined && bytes !== stream.bytes)) {
    return `${stream.key}: stored bytes do not match their record (sha256 ${actual.slice(0, 16)}…, ${bytes} bytes; recorded ${stream.sha256.slice(0, 16)}…, ${stream.bytes ?? '?'} bytes)`;
  }
  return undefined;
}
