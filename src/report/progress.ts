/**
 * Streams in flight as lines for a person watching: `backup` redraws them on its terminal about once a
 * second, `status --watch` draws them from the service's state file. The formatting is pure; the
 * ticker only redraws.
 */
import { humanBytes } from './render.js';

export interface StreamView {
  dataset: string;
  target: string;
  bytes: number;
  estimatedBytes?: number;
  /** Unix milliseconds. */
  startedAt: number;
}

/** `12s`, `3m05s`, `2h07m`: what is left of a stream, or how long it has run. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.floor(s / 60);
  if (m < 48 * 60) return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(m / 1440)}d${String(Math.floor(m / 60) % 24).padStart(2, '0')}h`;
}

/** Bytes per second since the stream started. */
export function averageRate(stream: StreamView, now: number): number {
  const seconds = (now - stream.startedAt) / 1000;
  return seconds > 0 ? stream.bytes / seconds : 0;
}

/**
 * One stream: dataset, target, bytes (of the estimate, with a percentage), rate and, when there is an
 * estimate it has not passed yet and a rate, the time left. The estimate is `~` because `written` or
 * `zfs send -nP` are not the stream's exact size.
 */
export function streamLine(stream: StreamView, rate: number): string {
  const parts = [`${stream.dataset} -> ${stream.target}:`];
  const estimate = stream.estimatedBytes;
  if (estimate !== undefined && estimate > 0) {
    const percent = Math.min(100, Math.floor((stream.bytes / estimate) * 100));
    parts.push(`${humanBytes(stream.bytes)} of ~${humanBytes(estimate)} (${percent}%)`);
  } else parts.push(humanBytes(stream.bytes));
  parts.push(`${humanBytes(Math.round(rate))}/s`);
  if (estimate !== undefined && rate > 0 && stream.bytes < estimate)
    parts.push(`ETA ${formatDuration((estimate - stream.bytes) / rate)}`);
  return parts.join(' ');
}

/** Every stream's line, at most `limit` of them and a line saying how many more. */
export function progressLines(
  streams: readonly StreamView[],
  rateOf: (stream: StreamView) => number,
  limit = 12,
): string[] {
  const lines = streams.slice(0, limit).map((s) => streamLine(s, rateOf(s)));
  if (streams.length > limit) lines.push(`... and ${streams.length - limit} more streams`);
  return lines;
}

/** Progress is for a person at a terminal: never with --json or --dry-run, never without a TTY (cron), never on a dumb one. */
export function showsProgress(o: { json?: boolean; dryRun?: boolean; isTTY?: boolean; term?: string }): boolean {
  return !o.json && !o.dryRun && o.isTTY === true && o.term !== 'dumb';
}

/**
 * Rates over the last few seconds rather than since the start, so a stream that stalls shows it: each
 * sample moves a per-stream average a third of the way to the rate since the previous sample.
 */
export class RateMeter {
  private readonly last = new Map<string, { bytes: number; at: number; rate: number }>();

  rate(stream: StreamView, now: number): number {
    const key = `${stream.dataset}\0${stream.target}\0${stream.startedAt}`;
    const previous = this.last.get(key);
    let rate = averageRate(stream, now);
    if (previous && now > previous.at) {
      const recent = ((stream.bytes - previous.bytes) * 1000) / (now - previous.at);
      rate = previous.rate + (recent - previous.rate) / 3;
    }
    this.last.set(key, { bytes: stream.bytes, at: now, rate });
    return rate;
  }

  /** Forgets streams that ended. */
  keep(streams: readonly StreamView[]): void {
    const live = new Set(streams.map((s) => `${s.dataset}\0${s.target}\0${s.startedAt}`));
    for (const key of this.last.keys()) if (!live.has(key)) this.last.delete(key);
  }
}

/**
 * Redraws the streams' lines at the bottom of `out` every `intervalMs`. Anything else written to `out`
 * in between (log lines) first erases the drawn lines, so it is never overwritten; the next tick draws
 * them again below it. `stop` erases them for good and gives `out` its own write back.
 */
export function startProgressTicker(
  out: NodeJS.WriteStream,
  list: () => StreamView[],
  intervalMs = 1000,
): { stop(): void } {
  const meter = new RateMeter();
  const ownWrite = Object.getOwnPropertyDescriptor(out, 'write');
  const originalWrite = out.write.bind(out);
  let drawn = 0;
  const write = (text: string) => originalWrite(text);
  const erase = () => {
    if (drawn > 0) write(`\x1b[${drawn}A\r\x1b[J`);
    drawn = 0;
  };
  out.write = ((...args: Parameters<NodeJS.WriteStream['write']>) => {
    erase();
    return (originalWrite as (...a: typeof args) => boolean)(...args);
  }) as NodeJS.WriteStream['write'];
  const draw = () => {
    const now = Date.now();
    const streams = list();
    meter.keep(streams);
    const width = Math.max(20, (out.columns || 80) - 1);
    const lines = progressLines(streams, (s) => meter.rate(s, now), Math.max(1, (out.rows || 24) - 2)).map((line) =>
      line.length > width ? `${line.slice(0, width - 3)}...` : line,
    );
    erase();
    if (lines.length > 0) write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  const timer = setInterval(draw, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      erase();
      if (ownWrite) Object.defineProperty(out, 'write', ownWrite);
      else delete (out as { write?: unknown }).write;
    },
  };
}
