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

/** The command as sh text and as an operator would type it (messages, --dry-run, local `sh -c`). */
export function commandLine(argv: Argv): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(shellQuote).join(' ');
}

/** `a | b | c` for messages; what runs is `pipelineScript`'s. */
export function pipelineText(pipeline: readonly Argv[]): string {
  return pipeline.map(commandLine).join(' | ');
}

/** sh's newline, made without writing one: `$(…)` strips trailing newlines, so a mark follows it. */
const NEWLINE_VARIABLE = `nl=$(printf '\\n.'); nl=\${nl%.}; `;

/** A quoted argument on one line: a newline inside it becomes `'"$nl"'` (see NEWLINE_VARIABLE). */
function lineQuote(arg: string): string {
  return shellQuote(arg).replace(/\n/g, `'"$nl"'`);
}

function scriptCommand(argv: Argv): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(lineQuote).join(' ');
}

/**
 * One line of POSIX sh that runs the pipeline and exits with what bash's pipefail would give (the
 * last failing stage's status, 0 if none failed), so a failed `zfs send` or gunzip before a
 * `zfs receive` that saw a clean end of stream is not lost. By hand, because dash has no pipefail:
 * each stage writes `stage:status` to fd 3 when it fails, the last stage's output goes to the
 * script's (fd 4), and the commands themselves get neither descriptor.
 */
export function pipelineScript(pipeline: readonly Argv[]): string {
  if (pipeline.length === 0) throw new Error('empty pipeline');
  const newline = pipeline.some((argv) => argv.some((arg) => arg.includes('\n'))) ? NEWLINE_VARIABLE : '';
  if (pipeline.length === 1) return `${newline}${scriptCommand(pipeline[0]!)}`;
  const stages = pipeline.map((argv, index) => `{ ${scriptCommand(argv)} 3>&- 4>&- || echo "${index + 1}:$?" >&3; }`);
  return (
    `${newline}exec 4>&1; failed=$({ ${stages.join(' | ')}; } 3>&1 >&4); exec 4>&-; ` +
    `last=0; status=0; for f in $failed; do if [ "\${f%:*}" -gt "$last" ]; then last=\${f%:*}; status=\${f#*:}; fi; done; exit "$status"`
  );
}

/**
 * What sshd is given for every remote command: `exec /bin/sh -c '<script>'`. sshd runs it as
 * `$SHELL -c …` with the backup user's login shell (csh, tcsh, dash, bash, ksh), and this line
 * means the same in each: single-quoted words (no newline, which csh rejects inside quotes; `!`
 * outside the quotes and escaped, as csh expands history even inside them), after `exec`, so sh
 * takes the shell's place and its `$$` is the session's process group. BSD csh refuses a word
 * over 8 KB ("Word too long"), so a longer script goes as several words that sh joins again.
 */
export function loginShellCommand(script: string): string {
  if (script.includes('\n')) throw new Error('a remote script must be one line (csh rejects a newline inside quotes)');
  if (script.length <= LOGIN_SHELL_WORD) return `exec /bin/sh -c ${loginShellWord(script)}`;
  const parts: string[] = [];
  for (let i = 0; i < script.length; i += LOGIN_SHELL_WORD)
    parts.push(loginShellWord(script.slice(i, i + LOGIN_SHELL_WORD)));
  return `exec /bin/sh -c ${loginShellWord('zc_script=; for zc_part; do zc_script=$zc_script$zc_part; done; eval "$zc_script"')} sh ${parts.join(' ')}`;
}

/** Characters of script in one word: quoted (a `'` becomes four) they stay under BSD csh's 8 KB. */
const LOGIN_SHELL_WORD = 2000;

function loginShellWord(text: string): string {
  return `'${text.replace(/'/g, `'\\''`).replace(/!/g, `'\\!'`)}'`;
}

/** The pipeline as the one command line sent to the backup host (`before`: sh text run first). */
export function remoteCommand(pipeline: readonly Argv[], before = ''): string {
  return loginShellCommand(`${before}${pipelineScript(pipeline)}`);
}
