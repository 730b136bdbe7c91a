/**
 * Simulated non-interactive `zlogin [-nQES] [-l user] zonename command [args ...]`, after illumos
 * usr/src/cmd/zlogin/zlogin.c: only a running zone ("login allowed only to running zones"); the
 * arguments joined with a space after each (prep_args) and given to `su root -c`, i.e. the zone's
 * shell, once; PATH=/usr/sbin:/usr/bin (prep_env); the command in its own process group
 * (setpgid), to which zlogin forwards SIGINT and nothing else (sig_forward); zlogin exits with
 * WEXITSTATUS of it, so 0 when a signal ended it. The zone is its root here: `chroot`.
 */
import { spawn } from 'node:child_process';
import { isUuid, readRecord, zonepath } from './host.js';

function fail(message: string, code: number): number {
  process.stderr.write(`zlogin: ${message}\n`);
  return code;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  let user = 'root';
  while (args[0]?.startsWith('-')) {
    const flag = args.shift()!;
    if (flag === '-l') user = args.shift() ?? '';
    else if (flag === '-C') return fail('the console (-C) is not simulated', 2);
    else if (!/^-[nQES]+$/.test(flag))
      return fail(`usage: zlogin [ -nQCES ] [ -e cmdchar ] [-l user] zonename [command [args ...] ]`, 2);
  }
  const zone = args.shift();
  if (!zone) return fail('usage: zlogin [ -nQCES ] [ -e cmdchar ] [-l user] zonename [command [args ...] ]', 2);
  const record = isUuid(zone) ? readRecord(zone) : undefined;
  if (!record) return fail(`${zone}: No such zone configured`, 1);
  const state = record.state === 'running' ? 'running' : 'installed';
  if (state !== 'running') return fail(`login allowed only to running zones (${zone} is '${state}').`, 1);
  if (args.length === 0) return fail('interactive login is not simulated; give a command', 2);
  if (user !== 'root') return fail(`only -l root is simulated (asked: ${user})`, 2);
  const subshell = args.map((a) => `${a} `).join('');
  const child = spawn('chroot', [`${zonepath(zone)}/root`, '/bin/sh', '-c', subshell], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin', HOME: '/', SHELL: '/bin/sh', LOGNAME: 'root' },
  });
  // zlogin's own pipes: what the command leaves running cannot hold the caller's
  process.stdin.pipe(child.stdin).on('error', () => {});
  child.stdout.pipe(process.stdout);
  child.stderr.pipe(process.stderr);
  process.on('SIGINT', () => {
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      // the group is gone already
    }
  });
  // zlogin returns when its child has died (dead_child_pipe), not when everything it started closed the pipes
  const code = await new Promise<number>((resolve) =>
    child.on('exit', (status) => setTimeout(() => resolve(status ?? 0), 50)),
  );
  process.stdin.unpipe(child.stdin);
  process.stdin.destroy();
  return code;
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
