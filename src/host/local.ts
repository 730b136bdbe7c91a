import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import {
  checkResult,
  describeCommand,
  describePipeline,
  dryRunResult,
  HostStats,
  type CommandResult,
  type Host,
  type RunOptions,
  type StreamProcess,
} from './host.js';
import { endProcessGroup } from './process-group.js';
import type { Argv } from './quote.js';

/** The SmartOS host itself: commands run as child processes, never through a shell. */
export class LocalHost implements Host {
  readonly label = 'local';
  readonly stats = new HostStats('local');

  constructor(
    readonly dryRun: boolean,
    private readonly print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    const skipped = dryRunResult(this, argv, options);
    if (skipped) return skipped;
    const [file, ...args] = argv;
    const finished = this.stats.count([argv]);
    const group = Boolean(options.processGroup && options.timeoutMs);
    const child = execa(file!, args, {
      // no input: stdin is /dev/null, so nothing can wait on it
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      reject: false,
      stripFinalNewline: false,
      timeout: group ? undefined : options.timeoutMs,
      // its own process group, so a timeout ends everything it started (process-group.ts)
      detached: group,
      env: { LC_ALL: 'C' },
    });
    let timedOut = false;
    let exited = false;
    const timer = group
      ? setTimeout(() => {
          timedOut = true;
          if (child.pid !== undefined) void endProcessGroup(child.pid, () => exited);
        }, options.timeoutMs)
      : undefined;
    const result = await child;
    exited = true;
    clearTimeout(timer);
    finished();
    const note = timedOut
      ? `timed out after ${(options.timeoutMs! / 1000).toFixed(0)} s; its process group was ended\n`
      : '';
    return checkResult(
      {
        host: this.label,
        command: describeCommand(argv),
        stdout: result.stdout ?? '',
        stderr:
          (result.stderr ?? '') +
          note +
          (result.failed && result.exitCode === undefined && !timedOut ? String(result.message) : ''),
        exitCode: timedOut ? 124 : (result.exitCode ?? 127),
        ...(timedOut ? { timedOut } : {}),
      },
      options,
    );
  }

  spawn(pipeline: readonly Argv[]): StreamProcess {
    const finished = this.stats.count(pipeline);
    // Stages start from the last: each stage writes straight into the stdin pipe of the one after
    // it, so the data between stages moves through the kernel and never through this process (one
    // copy through Node costs a third of mbuffer's rate in the test guest: bench/README.md).
    const stages: ResultPromise[] = [];
    for (let i = pipeline.length - 1; i >= 0; i--) {
      const [file, ...args] = pipeline[i]!;
      const next = stages[0];
      stages.unshift(
        execa(file!, args, {
          stdin: 'pipe',
          stdout: next ? next.stdin! : 'pipe',
          stderr: 'pipe',
          buffer: { stdout: false, stderr: true },
          reject: false,
          env: { LC_ALL: 'C' },
        }),
      );
      // our copy of the write end: the next stage sees end of file once this stage exits
      next?.stdin!.destroy();
    }
    // A reader that went away must not leave the last stage waiting to be read forever.
    // After the close, pipe() unpipes, and unpiping the last reader pauses: resume once that is done.
    const drainWhenClosed = (from: NodeJS.ReadableStream, reader: NodeJS.WritableStream & NodeJS.EventEmitter) =>
      reader.once('close', () => setImmediate(() => from.unpipe(reader).resume()));
    const first = stages[0]!;
    const last = stages[stages.length - 1]!;
    first.stdin!.on('error', () => {});
    const stdout = new PassThrough({ highWaterMark: 1 << 20 });
    drainWhenClosed(last.stdout!, stdout);
    last.stdout!.pipe(stdout);
    const command = describePipeline(pipeline);
    const done = Promise.all(stages).then((results): CommandResult => {
      // the last failing stage, as with `set -o pipefail`: a stage before it that failed only saw
      // its reader go away (EPIPE), while a stage after a failed one sees a plain end of file
      const failing = [...results].reverse().find((r) => exitCodeOf(r) !== 0);
      return {
        host: this.label,
        command,
        stdout: '',
        // a stage that never started has only execa's message (spawn … ENOENT)
        stderr: results
          .map(
            (r) =>
              (typeof r.stderr === 'string' ? r.stderr : '') +
              (r.exitCode === undefined && !r.signal ? `${r.message}\n` : ''),
          )
          .join(''),
        exitCode: failing ? exitCodeOf(failing) : 0,
      };
    });
    void done.then(finished);
    const listeners: Array<(text: string) => void> = [];
    for (const stage of stages)
      stage.stderr!.on('data', (chunk: Buffer) => listeners.forEach((l) => l(chunk.toString())));
    return {
      stdin: first.stdin!,
      stdout,
      done,
      onStderr: (listener) => listeners.push(listener),
      kill: async () => {
        for (const stage of stages) stage.kill('SIGTERM');
        last.stdout!.unpipe().resume();
        await done;
      },
    };
  }

  skipped(description: string): void {
    this.print(`[dry-run] local: ${description}`);
  }

  async close(): Promise<void> {}
}

/** A stage's exit code, shell style: 128 + the signal's number when a signal ended it, 127 when it never started. */
function exitCodeOf(result: { exitCode?: number; signal?: string }): number {
  if (result.exitCode !== undefined) return result.exitCode;
  if (result.signal) return 128 + (constants.signals[result.signal as keyof typeof constants.signals] ?? 9);
  return 127;
}
