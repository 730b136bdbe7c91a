import {
  CommandError,
  HostStats,
  type CommandResult,
  type Host,
  type RunOptions,
  type StreamProcess,
} from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';

/** An answer by a command's first words, or computed from the whole argv (undefined: exit 0, no output). */
export type Answers = Array<[string, Partial<CommandResult>]> | ((argv: Argv) => Partial<CommandResult> | undefined);

/** Answers commands from a table (by their first words); records every one, and what a dry run skipped. */
export class ScriptedHost implements Host {
  readonly stats = new HostStats();
  readonly commands: Argv[] = [];
  readonly skippedLines: string[] = [];

  constructor(
    private readonly answers: Answers,
    readonly dryRun = false,
    readonly label = 'local',
  ) {}

  async run(argv: Argv, options: RunOptions): Promise<CommandResult> {
    if (this.dryRun && options.mutates) {
      this.skippedLines.push(argv.join(' '));
      return { host: this.label, command: argv.join(' '), stdout: '', stderr: '', exitCode: 0 };
    }
    this.commands.push(argv);
    const answer =
      typeof this.answers === 'function'
        ? this.answers(argv)
        : this.answers.find(([prefix]) => argv.join(' ').startsWith(prefix))?.[1];
    const result = { host: this.label, command: argv.join(' '), stdout: '', stderr: '', exitCode: 0, ...answer };
    if (result.exitCode !== 0 && !options.allowExitCodes?.includes(result.exitCode)) throw new CommandError(result);
    return result;
  }

  spawn(): StreamProcess {
    throw new Error('not used');
  }
  skipped(description: string): void {
    this.skippedLines.push(description);
  }
  async close(): Promise<void> {}
}
