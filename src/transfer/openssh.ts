import type { Argv } from '../host/quote.js';
import type { SshEndpoint } from '../host/remote.js';

/** The OpenSSH child reaches the backup host with the same host, key and known_hosts as the control connection. */
export type OpensshTarget = SshEndpoint;

/** Ciphers in order of speed on hosts with AES instructions (peripherals.md §2), with fallbacks every sshd offers. */
const CIPHERS = 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr';

/**
 * `ssh … host <remote command>` for the bulk stream. OpenSSH pushes about twice what the ssh2
 * channel does (bench/README.md), so the data takes this path while every control command stays on
 * the run's one ssh2 connection. `remoteCommand` is already quoted (pipelineLine); it is one argv
 * element here, so nothing is quoted twice.
 */
export function opensshArgv(target: OpensshTarget, remoteCommand: string): Argv {
  const hostKey = target.disableHostKeyChecking
    ? ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR']
    : ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${target.knownHostsPath}`];
  return [
    'ssh', '-T', '-x', '-a',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=30', '-o', 'ServerAliveCountMax=4', '-o', 'Compression=no',
    ...hostKey,
    '-c', CIPHERS,
    '-p', String(target.port),
    ...(target.privateKeyPath ? ['-i', target.privateKeyPath, '-o', 'IdentitiesOnly=yes'] : []),
    '-l', target.username,
    '--', target.host, remoteCommand,
  ];
}
