/**
 * A stand-in for a KVM guest's QEMU guest agent, listening where qemu's `-chardev socket,…,server`
 * would: one JSON command a line, one JSON reply a line (qemu-ga-ref). While frozen it answers
 * only what qemu-ga allows then (qga/main.c ga_freeze_allowlist: guest-ping, guest-info,
 * guest-sync, guest-sync-delimited, guest-fsfreeze-status, guest-fsfreeze-thaw); a second freeze
 * is refused, a thaw when thawed returns 0.
 *
 *   node guest-agent.js SOCKET [--log FILE] [--watch DATASET] [--hang-freeze] [--fail-freeze]
 *
 * --log appends each command (with the number of snapshots of --watch at that moment, to show
 * the snapshot came between freeze and thaw); --hang-freeze freezes but never answers (a guest
 * stuck in its freeze, to be thawed all the same); --fail-freeze answers it with an error.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

const ALLOWED_FROZEN = new Set([
  'guest-ping',
  'guest-info',
  'guest-sync',
  'guest-sync-delimited',
  'guest-fsfreeze-status',
  'guest-fsfreeze-thaw',
]);

const [socket, ...options] = process.argv.slice(2);
if (!socket) {
  process.stderr.write('usage: guest-agent.js SOCKET [--log FILE] [--watch DATASET] [--hang-freeze] [--fail-freeze]\n');
  process.exit(2);
}
const option = (name: string) => {
  const i = options.indexOf(name);
  return i >= 0 ? options[i + 1] : undefined;
};
const log = option('--log');
const watch = option('--watch');
let frozen = false;

function snapshots(): string {
  if (!watch) return '';
  const out = execFileSync('zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name', '-d', '1', watch], {
    encoding: 'utf8',
  });
  return ` snapshots=${out.split('\n').filter(Boolean).length}`;
}

function reply(request: { execute?: string; arguments?: { id?: number } }): object | undefined {
  const command = String(request.execute);
  if (log) appendFileSync(log, `${command}${snapshots()}\n`);
  if (frozen && !ALLOWED_FROZEN.has(command))
    return { error: { class: 'GenericError', desc: `The command ${command} has been disabled for this instance` } };
  switch (command) {
    case 'guest-sync':
      return { return: request.arguments?.id };
    case 'guest-ping':
      return { return: {} };
    case 'guest-fsfreeze-status':
      return { return: frozen ? 'frozen' : 'thawed' };
    case 'guest-fsfreeze-freeze':
      // a freeze that never completes: some filesystems frozen, no answer
      if (options.includes('--hang-freeze')) {
        frozen = true;
        return undefined;
      }
      if (options.includes('--fail-freeze'))
        return { error: { class: 'GenericError', desc: 'failed to freeze /: Operation not supported' } };
      frozen = true;
      return { return: 1 };
    case 'guest-fsfreeze-thaw': {
      const thawed = frozen ? 1 : 0;
      frozen = false;
      return { return: thawed };
    }
    default:
      return { error: { class: 'CommandNotFound', desc: `The command ${command} has not been found` } };
  }
}

rmSync(socket, { force: true });
const server = createServer((connection) => {
  let buffered = '';
  connection.setEncoding('utf8');
  connection.on('error', () => {});
  connection.on('data', (chunk: string) => {
    buffered += chunk;
    let at;
    while ((at = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, at).trim();
      buffered = buffered.slice(at + 1);
      if (!line) continue;
      let answer: object | undefined;
      try {
        answer = reply(JSON.parse(line) as { execute?: string });
      } catch {
        answer = { error: { class: 'GenericError', desc: 'JSON parse error' } };
      }
      if (answer) connection.write(`${JSON.stringify(answer)}\n`);
    }
  });
});
server.listen(socket, () => process.stdout.write(`listening ${socket}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
