import { randomInt } from 'node:crypto';
import { describePipeline, type CommandResult, type StreamProcess } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import { scaledBytes } from './byte-units.js';
import { failureMessage } from './pump.js';
import { TransferError, type StrategyOptions, type TransferResult, type TransferStrategy } from './strategy.js';

const LISTENING = /listening on/;
const PORT_TAKEN = /Address already in use|Unable to initialize network input|cannot bind|bind/i;
const PORT_ATTEMPTS = 6;
const LISTEN_TIMEOUT_MS = 30_000;

/**
 * `mbuffer` / `mbuffer_gzip`: plain TCP between two mbuffers, for trusted networks. The receiver
 * runs over the SSH connection and accepts only the SmartOS host's address; the sender starts
 * only once the receiver listens; a port that is taken is retried with another; both ends have a
 * watchdog (-W) and are ended by process (group) on any failure.
 */
export class MbufferStrategy implements TransferStrategy {
  private senderAddress?: string;

  constructor(
    readonly name: 'mbuffer' | 'mbuffer_gzip',
    private readonly options: StrategyOptions,
  ) {}

  private receiverPipeline(receive: Argv, allowFrom: string, port: number): Argv[] {
    const o = this.options;
    const listen: Argv = [
      o.mbufferRemote,
      '-q',
      '-v',
      '4',
      '-s',
      '128k',
      '-m',
      o.mbufferRemoteSize,
      '-W',
      String(o.mbufferTimeoutSeconds),
      '-I',
      `${allowFrom}:${port}`,
    ];
    return this.name === 'mbuffer' ? [listen, receive] : [listen, o.decompress, receive];
  }

  /** Not quiet: its closing `summary:` line is the only count of the bytes sent (see transfer). */
  private senderPipeline(port: number): Argv[] {
    const o = this.options;
    return [
      [
        o.mbufferLocal,
        '-s',
        '128k',
        '-m',
        o.mbufferLocalSize,
        '-W',
        String(o.mbufferTimeoutSeconds),
        '-O',
        `${o.remoteAddress}:${port}`,
      ],
    ];
  }

  private sourcePipeline(send: Argv): Argv[] {
    return this.name === 'mbuffer' ? [send] : [send, this.options.compress];
  }

  /** The SmartOS host's address as the backup host sees it (from the SSH session). */
  private async allowFrom(): Promise<string> {
    if (!this.senderAddress) {
      // sh's own variable: a global zone has no printenv
      const out = await this.options.remote.run(['sh', '-c', 'echo "$SSH_CONNECTION"'], { mutates: false });
      const address = out.stdout.trim().split(/\s+/)[0];
      if (!address)
        throw new TransferError(
          `${this.options.remote.label}: cannot tell the SmartOS host's address (SSH_CONNECTION is empty)`,
        );
      this.senderAddress = address;
    }
    return this.senderAddress;
  }

  private async listen(receive: Argv): Promise<{ receiver: StreamProcess; port: number }> {
    const allowFrom = await this.allowFrom();
    const [low, high] = this.options.mbufferPorts;
    let lastError = '';
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = randomInt(low, high + 1);
      const receiver = this.options.remote.spawn(this.receiverPipeline(receive, allowFrom, port));
      receiver.stdin.end();
      receiver.stdout.resume();
      const state = await waitForListener(receiver);
      if (state.listening) return { receiver, port };
      await receiver.kill();
      lastError = state.stderr;
      if (!PORT_TAKEN.test(state.stderr)) break;
    }
    throw new TransferError(
      `mbuffer on ${this.options.remote.label} did not start listening: ${lastError.trim() || 'no message'}`,
    );
  }

  /**
   * The local side is one pipeline, `zfs send [| compress] | mbuffer -O`, joined by kernel pipes:
   * the stream never passes through this process (a copy through Node cost a third of mbuffer's
   * rate: bench/README.md). So the bytes sent are read from mbuffer's closing summary, which
   * gives three significant digits.
   */
  async transfer(send: Argv, receive: Argv): Promise<TransferResult> {
    const started = Date.now();
    const { receiver, port } = await this.listen(receive);
    const sender = this.options.local.spawn([...this.sourcePipeline(send), ...this.senderPipeline(port)]);
    sender.stdin.end();
    sender.stdout.resume();
    const what = `\`${describePipeline(this.sourcePipeline(send))}\` via mbuffer to ${this.options.remoteAddress}:${port}`;
    // whichever end fails first ends the other, so neither waits for a partner that is gone
    const endOtherOnFailure = (other: StreamProcess) => (result: CommandResult) => {
      if (result.exitCode !== 0) void other.kill();
      return result;
    };
    const [sent, received] = await Promise.all([
      sender.done.then(endOtherOnFailure(receiver)),
      receiver.done.then(endOtherOnFailure(sender)),
    ]);
    const bytes = summaryBytes(sent.stderr);
    if (sent.exitCode !== 0 || received.exitCode !== 0) {
      throw new TransferError(
        failureMessage(
          what,
          { ...sent, stderr: withoutStatus(sent.stderr) },
          { ...received, stderr: withoutStatus(received.stderr) },
          bytes,
        ),
      );
    }
    return { bytes, seconds: (Date.now() - started) / 1000 };
  }

  async close(): Promise<void> {}

  describe(send: Argv, receive: Argv): string {
    return `${describePipeline([...this.sourcePipeline(send), ...this.senderPipeline(0)])} ; on ${this.options.remote.label}: ${describePipeline(this.receiverPipeline(receive, '<smartos-host>', 0))}  (port chosen at run time)`;
  }
}

function waitForListener(receiver: StreamProcess): Promise<{ listening: boolean; stderr: string }> {
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const finish = (listening: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ listening, stderr });
    };
    const timer = setTimeout(() => finish(false), LISTEN_TIMEOUT_MS);
    receiver.onStderr((text) => {
      stderr += text;
      if (LISTENING.test(stderr)) finish(true);
    });
    void receiver.done.then((r) => {
      stderr += r.stderr;
      finish(false);
    });
  });
}

/** Bytes from mbuffer's `summary:  1.5 GiByte in 40.2sec - average of 38.1 MiB/s` (0 without one). */
export function summaryBytes(stderr: string): number {
  const match = /summary:\s+([\d.]+)\s*([kMGT]?)i?Byte/.exec(stderr);
  return match ? scaledBytes(match[1]!, match[2]!) : 0;
}

/** mbuffer's running status (`in @ … MiB/s, out @ …` ended by \r) is noise in an error message. */
function withoutStatus(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.split('\r').at(-1)!)
    .filter((line) => !line.startsWith('in @ '))
    .join('\n');
}
