import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CommandResult, StreamProcess } from '../host/host.js';
import { currentStream } from './progress.js';
import { TransferError, type TransferResult } from './strategy.js';

/**
 * Moves a stream from `source` to `sink`, counting bytes (and showing each chunk to `observe`, to
 * hash it on the way). When either end fails the other is ended too (no half-open zfs send waiting
 * forever on a dead receiver), and the error names both. The bytes count live in the stream
 * `inStream` opened around the call, if any (transfer/progress.ts).
 */
export async function pump(
  source: StreamProcess,
  sink: StreamProcess,
  what: string,
  observe?: (chunk: Buffer) => void,
): Promise<TransferResult> {
  const started = Date.now();
  let bytes = 0;
  const progress = currentStream();
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      progress?.add(chunk.length);
      observe?.(chunk);
      callback(null, chunk);
    },
  });
  const flow = pipeline(source.stdout, counter, sink.stdin).catch(() => undefined);
  let firstFailure: 'send' | 'receive' | undefined;
  // Unread data stuck between the two ends would keep a dead pipeline's stages from ever settling.
  const stopFlow = () => {
    for (const stream of [source.stdout, counter, sink.stdin]) if (!stream.destroyed) stream.destroy();
  };
  const endOtherOnFailure = (result: CommandResult, other: StreamProcess, side: 'send' | 'receive') => {
    if (result.exitCode !== 0) {
      firstFailure ??= side;
      stopFlow();
      // both: the failed side may still hold output nobody reads now, which kill() drains
      void other.kill();
      void (other === sink ? source : sink).kill();
    }
    return result;
  };
  const [sent, received] = await Promise.all([
    source.done.then((r) => endOtherOnFailure(r, sink, 'send')),
    sink.done.then((r) => endOtherOnFailure(r, source, 'receive')),
  ]);
  stopFlow();
  await flow;
  const seconds = (Date.now() - started) / 1000;
  if (sent.exitCode !== 0 || received.exitCode !== 0) {
    throw new TransferError(
      failureMessage(what, firstFailure === 'receive' ? { ...sent, exitCode: 0 } : sent, received, bytes),
    );
  }
  return { bytes, seconds };
}

export function failureMessage(what: string, sent: CommandResult, received: CommandResult, bytes: number): string {
  const parts: string[] = [];
  if (received.exitCode !== 0)
    parts.push(
      `receive on ${received.host} exited ${received.exitCode}: ${lastLines(received.stderr) || '(no message)'}`,
    );
  if (sent.exitCode !== 0)
    parts.push(`send on ${sent.host} exited ${sent.exitCode}: ${lastLines(sent.stderr) || '(no message)'}`);
  return `${what} failed after ${bytes} bytes: ${parts.join('; ')}`;
}

export function lastLines(text: string): string {
  return text.trim().split('\n').filter(Boolean).slice(-3).join(' / ');
}
