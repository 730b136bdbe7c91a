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
    const result = await execa(file!, args, {
      // no input: stdin is /dev/null, so nothing can wait on it
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      reject: false,
      stripFinalNewline: false,
      timeout: options.timeoutMs,
      env: { LC_ALL: 'C' },
    });
    finished();
    return checkResult(
      {
        host: this.label,
        command: describeCommand(argv),
        stdout: result.stdout ?? '',
        stderr: (result.stderr ?? '') + (result.failed && result.exitCode === undefined ? String(result.message) : ''),
        exitCode: result.exitCode ?? 127,
      },
      options,
    );
  }

  spawn(pipeline: readonly Argv[]): StreamProcess {
    const finished = this.stats.count(pipeline);
    const stages: ResultPromise[] = pipeline.map(([file, ...args]) =>
      execa(file!, args, {
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'pipe',
        buffer: { stdout: false, stderr: true },
        reject: false,
        env: { LC_ALL: 'C' },
      }),
    );
    // A stage whose reader went away must still be drained, or execa waits for its output forever.
    // After the close, pipe() unpipes, and unpiping the last reader pauses: resume once that is done.
    const drainWhenClosed = (from: NodeJS.ReadableStream, reader: NodeJS.WritableStream & NodeJS.EventEmitter) =>
      reader.once('close', () => setImmediate(() => from.unpipe(reader).resume()));
    for (let i = 0; i + 1 < stages.length; i++) {
      const from = stages[i]!.stdout!;
      const to = stages[i + 1]!.stdin!;
      to.on('error', () => {}); // EPIPE when a later stage ends early: its exit code tells the story
      drainWhenClosed(from, to);
      from.pipe(to);
    }
    const first = stages[0]!;
    const last = stages[stages.length - 1]!;
    first.stdin!.on('error', () => {});
    const stdout = new PassThrough({ highWaterMark: 1 << 20 });
    drainWhenClosed(last.stdout!, stdout);
    last.stdout!.pipe(stdout);
    const command = describePipeline(pipeline);
    const done = Promise.all(stages).then((results): CommandResult => {
      const failing = results.find((r) => r.exitCode !== 0);
      return {
        host: this.label,
        command,
        stdout: '',
        stderr: results.map((r) => (typeof r.stderr === 'string' ? r.stderr : '')).join(''),
        exitCode: failing ? (failing.exitCode ?? 128 + 9) : 0,
      };
    });
    void done.then(finished);
    const listeners: Array<(text: string) => void> = [];
    for (const stage of stages) stage.stderr!.on('data', (chunk: Buffer) => listeners.forEach((l) => l(chunk.toString())));
    return {
      stdin: first.stdin!,
      stdout,
      done,
      onStderr: (listener) => listeners.push(listener),
      kill: async () => {
        for (const stage of stages) {
          stage.kill('SIGTERM');
          stage.stdout!.unpipe().resume();
        }
        await done;
      },
    };
  }

  skipped(description: string): void {
    this.print(`[dry-run] local: ${description}`);
  }

  async close(): Promise<void> {}
}
