import type { Argv } from '../host/quote.js';
import type { SshEndpoint } from '../host/remote.js';

/** The OpenSSH child reaches the backup host with the same host, key and known_hosts as the control connection. */
export type OpensshTarget = SshEndpoint;

/** Ciphers in order of speed on hosts with AES instructions (peripherals.md §2), with fallbacks every sshd offers. */
/** A master left behind by a killed run goes away by itself after this long idle. */
const CONTROL_PERSIST_SECONDS = 60;

const CIPHERS = 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr';

/**
 * `ssh … host <remote command>` for the bulk stream. OpenSSH pushes about twice what the ssh2
 * channel does on real hardware (research notes; bench/README.md has the test guest's figures), so
 * the data takes this path while every control command stays on
 * the run's one ssh2 connection. `remoteCommand` is already quoted (pipelineLine); it is one argv
 * element here, so nothing is quoted twice. With `controlPath`, every stream of a run shares one
 * OpenSSH connection (the first one becomes the master), so a stream costs no key exchange.
 */
export function opensshArgv(target: OpensshTarget, remoteCommand: string, controlPath?: string): Argv {
  const hostKey = target.disableHostKeyChecking
    ? ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR']
    : ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${target.knownHostsPath}`];
  return [
    'ssh', '-T', '-x', '-a',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=30', '-o', 'ServerAliveCountMax=4', '-o', 'Compression=no',
    ...hostKey,
    ...(controlPath ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlPath}`, '-o', `ControlPersist=${CONTROL_PERSIST_SECONDS}`] : []),
    '-c', CIPHERS,
    '-p', String(target.port),
    ...(target.privateKeyPath ? ['-i', target.privateKeyPath, '-o', 'IdentitiesOnly=yes'] : []),
    '-l', target.username,
    '--', target.host, remoteCommand,
  ];
}

/** Ends a run's shared OpenSSH connection. */
export function opensshExitArgv(target: OpensshTarget, controlPath: string): Argv {
  return ['ssh', '-o', `ControlPath=${controlPath}`, '-O', 'exit', '-p', String(target.port), '-l', target.username, '--', target.host];
}
