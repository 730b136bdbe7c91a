/**
 * The send streams in flight in this process, with their bytes so far: what `backup` shows on a
 * terminal and what `serve` writes into its state file for `status --watch` and the metrics.
 *
 * The code that names a stream (which VM, dataset and target) sits above the transfer strategies,
 * and the code that counts its bytes (pump, the S3 upload) below them; `inStream` carries the one
 * to the other across the strategy without changing its interface.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface StreamInfo {
  uuid?: string;
  dataset: string;
  /** The configured target's name (a backup host, a bucket). */
  target: string;
  /** Bytes the stream is expected to carry, where the caller already knows it. */
  estimatedBytes?: number;
}

export interface StreamProgress extends StreamInfo {
  bytes: number;
  /** Unix milliseconds. */
  startedAt: number;
}

export interface StreamHandle {
  add(bytes: number): void;
  /** Removes the stream from the registry; a second call does nothing. */
  end(): void;
}

const active = new Set<StreamProgress>();
const ambient = new AsyncLocalStorage<StreamHandle>();

export function startStream(info: StreamInfo, now: number = Date.now()): StreamHandle {
  const entry: StreamProgress = { ...info, bytes: 0, startedAt: now };
  active.add(entry);
  return {
    add(bytes: number): void {
      entry.bytes += bytes;
    },
    end(): void {
      active.delete(entry);
    },
  };
}

/** A copy of every stream in flight, oldest first. */
export function activeStreams(): StreamProgress[] {
  return [...active].map((s) => ({ ...s }));
}

/** Runs `fn` as one registered stream: the byte counters it reaches (`currentStream`) add to it. */
export async function inStream<T>(info: StreamInfo, fn: () => Promise<T>): Promise<T> {
  const handle = startStream(info);
  try {
    return await ambient.run(handle, fn);
  } finally {
    handle.end();
  }
}

/** The stream `inStream` opened around this call, if any; read it synchronously where the counting starts. */
export function currentStream(): StreamHandle | undefined {
  return ambient.getStore();
}
