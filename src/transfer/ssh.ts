import { describePipeline } from '../host/host.js';
import { commandLine, type Argv } from '../host/quote.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scaledBytes } from './byte-units.js';
import { opensshArgv, opensshExitArgv, opensshMasterArgv } from './openssh.js';
import { lastLines, pump } from './pump.js';
import {
  TransferError,
  type SeriesItem,
  type SeriesResult,
  type StrategyOptions,
  type TransferHint,
  type TransferResult,
  type TransferStrategy,
} from './strategy.js';

/**
 * `ssh`: the stream goes to `zfs receive` on the backup host over SSH: an OpenSSH client child by
 * default (the fastest path bench/ measures), or a channel of the run's ssh2 connection.
 * `ssh_gzip`: the same with compressionCmd after `zfs send` and decompressionCmd before receive.
 */
/** Streams below this go over the ssh2 channel even when the bulk path is OpenSSH. */
export const SMALL_STREAM_BYTES = 64 * 1024 * 1024;

export class SshStrategy implements TransferStrategy {
  private controlDirectory?: string;
  private master?: { settled: boolean; ready: Promise<string> };
  readonly transferSeries?: (items: readonly SeriesItem[]) => Promise<SeriesResult>;

  constructor(
    readonly name: 'ssh' | 'ssh_gzip',
    private readonly options: StrategyOptions,
  ) {
    // ssh_gzip's series would be one gzip stream per send, each decompressed before its receive: not worth it for tiny streams
    if (name === 'ssh') this.transferSeries = (items) => this.series(items);
  }

  private pipelines(send: Argv, receive: Argv): { local: Argv[]; remote: Argv[] } {
    if (this.name === 'ssh') return { local: [send], remote: [receive] };
    return { local: [send, this.options.compress], remote: [this.options.decompress, receive] };
  }

  async transfer(send: Argv, receive: Argv, hint: TransferHint = {}): Promise<TransferResult> {
    // a small stream costs more to start than to move: one more process and SSH session is not worth it
    const small = hint.estimatedBytes !== undefined && hint.estimatedBytes < SMALL_STREAM_BYTES;
    const overOpenssh = this.options.bulk === 'openssh' && !small;
    if (overOpenssh && this.name === 'ssh') return this.throughKernel(send, receive);
    const { local, remote } = this.pipelines(send, receive);
    const sink = overOpenssh
      ? this.options.local.spawn([opensshArgv(this.options.openssh, remote, await this.sharedConnection())])
      : this.options.remote.spawn(remote);
    const source = this.options.local.spawn(local);
    source.stdin.end();
    return pump(source, sink, `\`${describePipeline(local)}\` to ${this.options.remote.label}`);
  }

  /**
   * `zfs send | ssh host 'zfs receive -v …'` as one local pipeline joined by kernel pipes: the
   * stream never passes through this process (one copy through Node cost a tenth to a fifth of
   * OpenSSH's rate in the test guest: bench/README.md). The bytes come from receive's closing
   * `received 1.00G stream` line, three significant digits, as mbuffer's summary gives them.
   */
  private async throughKernel(send: Argv, receive: Argv): Promise<TransferResult> {
    const started = Date.now();
    const stream = this.options.local.spawn([
      send,
      opensshArgv(this.options.openssh, [verbose(receive)], await this.sharedConnection()),
    ]);
    stream.stdin.end();
    // receive -v prints on its standard output: a few lines, which ssh passes on as its own
    let said = '';
    stream.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const result = await stream.done;
    const bytes = receivedBytes(said);
    if (result.exitCode !== 0) {
      throw new TransferError(
        `\`${describePipeline([send])}\` to ${this.options.remote.label} failed${bytes ? ` after ${bytes} bytes` : ''}: exited ${result.exitCode}: ${lastLines(result.stderr) || '(no message)'}`,
      );
    }
    return { bytes, seconds: (Date.now() - started) / 1000 };
  }

  /**
   * `sh -c 'zfs send … || exit 1 …'` into `sh -c 'zfs receive -v … || exit 1 …'` on one ssh2
   * channel: three processes and one channel for the whole series instead of that for each
   * stream. A receive reads exactly one stream, so the next starts where it stopped; a failed
   * receive ends the series before another could read the rest of its stream as its own. Each
   * received stream prints one `received 312B stream in 1 seconds` line: their count says how far
   * the series got.
   */
  private async series(items: readonly SeriesItem[]): Promise<SeriesResult> {
    // one line: the remote one reaches sh through the login shell, and csh refuses a newline in quotes
    const script = (commands: Argv[]) => commands.map((argv) => `${commandLine(argv)} || exit 1`).join('; ');
    const sends = items.map((item) => item.send);
    const receives = items.map((item) => verbose(item.receive));
    const source = this.options.local.spawn([['sh', '-c', script(sends)]]);
    source.stdin.end();
    const sink = this.options.remote.spawn([['sh', '-c', script(receives)]]);
    // the commands inside the two shells, for the run's statistics and trace
    const counted = [this.options.local.stats.count(sends), this.options.remote.stats.count(receives)];
    let said = '';
    sink.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    let failure: string | undefined;
    try {
      await pump(source, sink, `a series of ${items.length} streams to ${this.options.remote.label}`);
    } catch (error) {
      failure = (error as Error).message;
    }
    counted.forEach((finished) => finished());
    const received = receivedStreams(said);
    // both shells exited 0 only if every command did
    if (failure === undefined)
      return { received: items.map((_, index) => received[index] ?? { bytes: 0, seconds: 0 }) };
    const stopped = items[received.length];
    if (!stopped) return { received };
    return {
      received,
      error: `${failure}; it stopped at stream ${received.length + 1}, \`${describePipeline([stopped.send])}\``,
    };
  }

  /**
   * The control socket of the run's shared OpenSSH connection, in a private directory (mkdtemp:
   * mode 0700). Streams that start together wait for the one master; a master that went away
   * (idle past ControlPersist) is started again.
   */
  private sharedConnection(): Promise<string> {
    this.controlDirectory ??= mkdtempSync(join(tmpdir(), 'zonecopy-ssh-'));
    const path = join(this.controlDirectory, 'master');
    const current = this.master;
    if (current && (!current.settled || existsSync(path))) return current.ready;
    const master = { settled: false, ready: this.startMaster(path) };
    master.ready.then(
      () => (master.settled = true),
      () => (master.settled = true),
    );
    this.master = master;
    return master.ready;
  }

  private async startMaster(path: string): Promise<string> {
    await this.options.local.run(opensshMasterArgv(this.options.openssh, path), { mutates: false, timeoutMs: 60_000 });
    return path;
  }

  async close(): Promise<void> {
    if (!this.controlDirectory) return;
    const path = join(this.controlDirectory, 'master');
    if (existsSync(path))
      await this.options.local
        .run(opensshExitArgv(this.options.openssh, path), { mutates: false, allowExitCodes: [255], timeoutMs: 15_000 })
        .catch(() => undefined);
    rmSync(this.controlDirectory, { recursive: true, force: true });
    this.controlDirectory = undefined;
    this.master = undefined;
  }

  describe(send: Argv, receive: Argv): string {
    const { local, remote } = this.pipelines(send, receive);
    return `${describePipeline(local)} | ssh ${this.options.remote.label} '${describePipeline(remote)}'`;
  }
}

const RECEIVED_IN = /received ([\d.]+)([KMGTP]?)B? stream in ([\d.]+) seconds/g;

function verbose(receive: Argv): Argv {
  return [...receive.slice(0, 2), '-v', ...receive.slice(2)];
}

/** One entry per `received 312B stream in 1 seconds` line (a series' receives print one each). */
export function receivedStreams(output: string): TransferResult[] {
  return [...output.matchAll(RECEIVED_IN)].map((m) => ({ bytes: scaledBytes(m[1]!, m[2]!), seconds: Number(m[3]) }));
}

/** Bytes from `zfs receive -v`'s `received 1.00G stream in 25 seconds` (illumos writes `1.00GB`); 0 without one. */
export function receivedBytes(output: string): number {
  const match = /received ([\d.]+)([KMGTP]?)B? stream/.exec(output);
  return match ? scaledBytes(match[1]!, match[2]!) : 0;
}
