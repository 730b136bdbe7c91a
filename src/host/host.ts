import type { Readable, Writable } from 'node:stream';
import { commandLine, pipelineText, type Argv } from './quote.js';

/**
 * A machine that runs commands: the SmartOS host itself (execa) or the backup host (one ssh2
 * connection). Every call says whether it changes anything; with `dryRun` such calls are printed
 * and skipped here, in one place, while read-only calls still run. That is the whole dry-run.
 */
export interface Host {
  /** `local` or `user@host:port`, for messages. */
  readonly label: string;
  readonly dryRun: boolean;
  run(argv: Argv, options: RunOptions): Promise<CommandResult>;
  /**
   * Starts a pipeline whose first stage reads `stdin` and whose last stage writes `stdout`, for
   * streams. Not gated itself: whatever starts it does so inside `mutate`, which prints the whole
   * transfer as an operator would type it.
   */
  spawn(pipeline: readonly Argv[]): StreamProcess;
  /** Programs started on this host so far, by name (`zfs <subcommand>` for zfs; a pipeline counts each stage). */
  readonly stats: HostStats;
  /** Prints what a dry run would have done on this host. */
  skipped(description: string): void;
  close(): Promise<void>;
}

/** With ZONECOPY_TRACE=1 every command prints when it started (seconds into the run) and how long it took. */
const TRACE = Boolean(process.env.ZONECOPY_TRACE);

export class HostStats {
  readonly byProgram: Record<string, number> = {};

  constructor(private readonly label = '') {}

  /** Counts a command (or each stage of a pipeline) as it starts; call the result when it has ended. */
  count(pipeline: readonly Argv[]): () => void {
    for (const argv of pipeline) {
      const key = argv[0] === 'zfs' || argv[0] === 'zpool' ? `${argv[0]} ${argv[1]}` : argv[0]!;
      this.byProgram[key] = (this.byProgram[key] ?? 0) + 1;
    }
    if (!TRACE) return () => {};
    const started = performance.now();
    return () => {
      const s = (ms: number) => (ms / 1000).toFixed(2);
      process.stderr.write(
        `trace +${s(started)}s ${s(performance.now() - started)}s ${this.label}: ${describePipeline(pipeline).slice(0, 200)}\n`,
      );
    };
  }

  get total(): number {
    return Object.values(this.byProgram).reduce((a, b) => a + b, 0);
  }

  toJSON(): { total: number; byProgram: Record<string, number> } {
    return { total: this.total, byProgram: { ...this.byProgram } };
  }
}

export interface RunOptions {
  mutates: boolean;
  input?: string | Buffer;
  /** Exit codes besides 0 that the caller handles itself (no CommandError). */
  allowExitCodes?: readonly number[];
  timeoutMs?: number;
  /**
   * Local only: the command leads its own process group, and at `timeoutMs` the whole group is
   * ended (SIGINT, which zlogin forwards into the zone, then SIGTERM, then SIGKILL), so nothing it
   * started is left running; the result then has `timedOut` and exit code 124, as timeout(1).
   */
  processGroup?: boolean;
}

export interface CommandResult {
  host: string;
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Ended by `timeoutMs` (with `processGroup`). */
  timedOut?: boolean;
}

export interface StreamProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Settles when every stage has ended; never rejects. exitCode is the first failing stage's. */
  readonly done: Promise<CommandResult>;
  /** Ends the whole pipeline (the process group on a remote host). */
  kill(): Promise<void>;
  /** Calls `listener` with stderr text as it arrives (to wait for a listener to come up). */
  onStderr(listener: (text: string) => void): void;
}

export class CommandError extends Error {
  constructor(readonly result: CommandResult) {
    super(describeFailure(result));
    this.name = 'CommandError';
  }
}

export function describeFailure(result: CommandResult): string {
  const stderr = result.stderr.trim().split('\n').slice(-5).join(' / ');
  return `${result.host}: \`${result.command}\` exited ${result.exitCode}${stderr ? `: ${stderr}` : ''}`;
}

export function describeCommand(argv: Argv): string {
  return commandLine(argv);
}

export function describePipeline(pipeline: readonly Argv[]): string {
  return pipelineText(pipeline);
}

/** The dry-run gate shared by both hosts. Returns the result to use instead of running, if any. */
export function dryRunResult(host: Host, argv: Argv, options: RunOptions): CommandResult | undefined {
  if (!host.dryRun || !options.mutates) return undefined;
  const command = commandLine(argv);
  host.skipped(command);
  return { host: host.label, command, stdout: '', stderr: '', exitCode: 0 };
}

/**
 * A change made by more than one command (a transfer's pipelines on both hosts, an upload's
 * pipeline and parts) goes through here, so that --dry-run stays this module's: `work` runs, or
 * under a dry run each line of `description` is printed on `host` and `skipped` is returned.
 */
export async function mutate<T>(
  host: Host,
  description: string | readonly string[],
  work: () => Promise<T>,
  skipped: T,
): Promise<T> {
  if (!host.dryRun) return work();
  for (const line of typeof description === 'string' ? [description] : description) host.skipped(line);
  return skipped;
}

export function checkResult(result: CommandResult, options: RunOptions): CommandResult {
  if (result.exitCode === 0 || options.allowExitCodes?.includes(result.exitCode)) return result;
  throw new CommandError(result);
}
