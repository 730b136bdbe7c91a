import { existsSync, readFileSync } from 'node:fs';
import { constants, homedir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import {
  checkResult,
  describePipeline,
  dryRunResult,
  HostStats,
  type CommandResult,
  type Host,
  type RunOptions,
  type StreamProcess,
} from './host.js';
import { HostKeyError, verifyHostKey } from './known-hosts.js';
import { commandLine, remoteCommand, type Argv } from './quote.js';

/** Where the backup host is and how its key is checked: the ssh2 connection and the OpenSSH bulk child share these. */
export interface SshEndpoint {
  host: string;
  port: number;
  username: string;
  privateKeyPath?: string;
  knownHostsPath: string;
  disableHostKeyChecking: boolean;
}

export interface RemoteOptions extends SshEndpoint {
  dryRun: boolean;
  connectTimeoutMs?: number;
  print?: (line: string) => void;
}

export class ConnectError extends Error {
  override name = 'ConnectError';
}

/** No SSH conversation at all (refused, timed out, no route): the backup host is down, not misconfigured. */
export class UnreachableError extends ConnectError {
  override name = 'UnreachableError';
}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
const PGID_MARK = 'zonecopy-pgid ';

function readPrivateKey(options: RemoteOptions): Buffer {
  if (options.privateKeyPath) {
    try {
      return readFileSync(options.privateKeyPath);
    } catch (error) {
      throw new ConnectError(
        `cannot read the SSH private key ${options.privateKeyPath} (backupDestinationPrivateKeyPath): ${(error as Error).message}`,
      );
    }
  }
  const found = DEFAULT_KEYS.map((name) => join(homedir(), '.ssh', name)).find((path) => existsSync(path));
  if (!found) {
    throw new ConnectError(
      `no SSH private key: set backupDestinationPrivateKeyPath, or create ${join(homedir(), '.ssh', 'id_ed25519')} (ssh-keygen -t ed25519) and authorise it on the backup host.`,
    );
  }
  return readFileSync(found);
}

/**
 * The backup host over ONE ssh2 connection: every control command and every stream is a channel
 * of it. Remote pipelines report their process group first, so they can be ended as a group.
 */
export class RemoteHost implements Host {
  readonly label: string;
  readonly dryRun: boolean;
  readonly stats = new HostStats('remote');
  private readonly print: (line: string) => void;
  private ended = false;
  /** Why the connection ended, when it ended by an error (keepalive timeout, reset). */
  lastError?: string;

  private constructor(
    private readonly client: Client,
    options: RemoteOptions,
  ) {
    this.label = `${options.username}@${options.host}:${options.port}`;
    this.dryRun = options.dryRun;
    this.print = options.print ?? ((line) => process.stdout.write(`${line}\n`));
    // an error after 'ready' (a reset, a keepalive timeout) ends the connection: without a listener
    // it would be thrown and end the process; commands in flight fail on their channels instead
    client.on('error', (error: Error) => {
      this.ended = true;
      this.lastError = error.message;
    });
    client.on('close', () => {
      this.ended = true;
    });
  }

  /** The connection has ended (dropped or closed): a long-lived user such as `serve` connects again. */
  get closed(): boolean {
    return this.ended;
  }

  static async connect(options: RemoteOptions): Promise<RemoteHost> {
    const privateKey = readPrivateKey(options);
    const where = `${options.username}@${options.host}:${options.port}`;
    // loaded on the first connection, not at start-up: S3 runs never need it, and a backup loads it while `vmadm get` runs
    // a CommonJS module: its exports are the default export both in Node and in the bundle
    const { default: ssh2 } = await import('ssh2');
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      let keyError: Error | undefined;
      client.once('ready', () => resolve(new RemoteHost(client, options)));
      client.once('error', (error: Error & { level?: string }) => {
        if (keyError) return reject(keyError);
        if (error.level === 'client-authentication') {
          return reject(
            new ConnectError(
              `backup host ${where} refused the SSH key (authentication failed). Add the public key of ${options.privateKeyPath ?? 'your default key'} to ~${options.username}/.ssh/authorized_keys on the backup host.`,
            ),
          );
        }
        const reason = error.message.includes('Timed out') ? 'timed out' : error.message;
        reject(
          new UnreachableError(
            `cannot connect to backup host ${where}: ${reason}. Check backupDestination/backupDestinationPort and that sshd runs there.`,
          ),
        );
      });
      client.connect({
        host: options.host,
        port: options.port,
        username: options.username,
        privateKey,
        readyTimeout: options.connectTimeoutMs ?? 20_000,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 6,
        algorithms: {
          cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr'],
        },
        hostVerifier: (key: Buffer) => {
          if (options.disableHostKeyChecking) return true;
          try {
            verifyHostKey(options.knownHostsPath, options.host, options.port, key);
            return true;
          } catch (error) {
            keyError = error instanceof HostKeyError ? error : new ConnectError(String(error));
            return false;
          }
        },
      });
    });
  }

  private exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) =>
        error
          ? reject(new ConnectError(`${this.label}: cannot open an SSH channel: ${error.message}`))
          : resolve(channel),
      );
    });
  }

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    const skipped = dryRunResult(this, argv, options);
    if (skipped) return skipped;
    const command = commandLine(argv);
    const finished = this.stats.count([argv]);
    const channel = await this.exec(remoteCommand([argv]));
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    channel.on('data', (chunk: Buffer) => stdout.push(chunk));
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    channel.end(options.input);
    const timer = options.timeoutMs ? setTimeout(() => channel.close(), options.timeoutMs) : undefined;
    const exitCode = await channelExit(channel);
    finished();
    if (timer) clearTimeout(timer);
    return checkResult(
      {
        host: this.label,
        command,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
        exitCode,
      },
      options,
    );
  }

  spawn(pipeline: readonly Argv[]): StreamProcess {
    const command = describePipeline(pipeline);
    const finished = this.stats.count(pipeline);
    const stdin = new PassThrough({ highWaterMark: 1 << 20 });
    const stdout = new PassThrough({ highWaterMark: 1 << 20 });
    let pgid: string | undefined;
    let stderrText = '';
    const listeners: Array<(text: string) => void> = [];
    // sh has taken the login shell's place (loginShellCommand), so its $$ is the session's process group
    const channelPromise = this.exec(remoteCommand(pipeline, `echo "${PGID_MARK}$$" >&2; `));
    const done = channelPromise.then(
      async (channel): Promise<CommandResult> => {
        stdin.pipe(channel);
        channel.pipe(stdout);
        // a reader that gave up (a failed pump) must not leave data in the channel: unread, it never ends or closes
        stdout.on('close', () => {
          channel.unpipe(stdout);
          channel.resume();
        });
        // once the remote command is gone, writers must fail instead of filling a buffer forever
        channel.on('close', () => stdin.destroy());
        channel.stderr.on('data', (chunk: Buffer) => {
          stderrText += chunk.toString();
          if (pgid === undefined) {
            const newline = stderrText.indexOf('\n');
            if (newline >= 0 && stderrText.startsWith(PGID_MARK)) {
              pgid = stderrText.slice(PGID_MARK.length, newline).trim();
              stderrText = stderrText.slice(newline + 1);
              if (stderrText) listeners.forEach((l) => l(stderrText));
            }
          } else {
            listeners.forEach((l) => l(chunk.toString()));
          }
        });
        const exitCode = await channelExit(channel);
        return { host: this.label, command, stdout: '', stderr: stderrText, exitCode };
      },
      (error: Error): CommandResult => ({
        host: this.label,
        command,
        stdout: '',
        stderr: error.message,
        exitCode: 255,
      }),
    );
    void done.then(finished);
    return {
      stdin,
      stdout,
      done,
      onStderr: (listener) => listeners.push(listener),
      kill: async () => {
        if (pgid && /^\d+$/.test(pgid)) {
          await this.run(['kill', '-s', 'TERM', '--', `-${pgid}`], { mutates: false, allowExitCodes: [1] }).catch(
            () => undefined,
          );
        }
        const channel = await channelPromise.catch(() => undefined);
        channel?.close();
        await done;
      },
    };
  }

  skipped(description: string): void {
    this.print(`[dry-run] ${this.label}: ${description}`);
  }

  async close(): Promise<void> {
    this.ended = true;
    this.client.end();
  }
}

/**
 * The command's exit status, from the channel's close event. Not from 'exit': a fast command's exec
 * reply, status and close can arrive in one read, and ssh2 emits 'exit' before the exec callback's
 * caller can listen; 'close' waits for the output to be read and carries the same status.
 */
function channelExit(channel: ClientChannel): Promise<number> {
  return new Promise((resolve) => {
    channel.on('close', (code?: number | null, signal?: string) => {
      if (typeof code === 'number') return resolve(code);
      const number = signal ? constants.signals[signal as NodeJS.Signals] : undefined;
      resolve(number ? 128 + number : 255);
    });
  });
}
