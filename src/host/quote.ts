/**
 * The one place where argv becomes shell text. Every command that crosses to a remote shell (ssh
 * exec) is an argv array or a pipeline of them; names from ZFS, vmadm and the config reach the
 * shell only through `shellQuote`, so metacharacters, quotes, spaces and newlines are inert.
 */

const SAFE = /^[A-Za-z0-9_\-+=.,/:@%]+$/;

export function shellQuote(arg: string): string {
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export type Argv = readonly string[];

export function commandLine(argv: Argv): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(shellQuote).join(' ');
}

/** `a | b | c` with pipefail, so a failure anywhere in the pipeline is the pipeline's status. */
export function pipelineLine(pipeline: readonly Argv[]): string {
  if (pipeline.length === 1) return commandLine(pipeline[0]!);
  return `set -o pipefail; ${pipeline.map(commandLine).join(' | ')}`;
}
