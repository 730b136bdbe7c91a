import { remoteCommand, type Argv } from '../host/quote.js';
import type { SshEndpoint } from '../host/remote.js';

/** The OpenSSH child reaches the backup host with the same host, key and known_hosts as the control connection. */
export type OpensshTarget = SshEndpoint;

/** A master left behind by a killed run goes away by itself after this long idle. */
const CONTROL_PERSIST_SECONDS = 60;

/** Ciphers in order of speed on hosts with AES instructions (peripherals.md §2), with fallbacks every sshd offers. */
const CIPHERS = 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr';

/** What every OpenSSH invocation of a run shares: no agent, no X11, batch mode, the pinned host key, the key. */
function commonOptions(target: OpensshTarget): string[] {
  const hostKey = target.disableHostKeyChecking
    ? ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR']
    : ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${target.knownHostsPath}`];
  return [
    '-x',
    '-a',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=30',
    '-o',
    'ServerAliveInterval=30',
    '-o',
    'ServerAliveCountMax=4',
    '-o',
    'Compression=no',
    ...hostKey,
    '-c',
    CIPHERS,
    '-p',
    String(target.port),
    ...(target.privateKeyPath ? ['-i', target.privateKeyPath, '-o', 'IdentitiesOnly=yes'] : []),
    '-l',
    target.username,
  ];
}

/**
 * `ssh … host <remote command>` for the bulk stream. OpenSSH pushes about twice what the ssh2
 * channel does on real hardware (research notes; bench/README.md has the test guest's figures), so
 * the data takes this path while every control command stays on
 * the run's one ssh2 connection. The remote pipeline becomes one argv element here, the same
 * login-shell-proof line the ssh2 connection sends (remoteCommand), so nothing is quoted twice. With `controlPath`, the stream goes over the run's
 * shared connection (opensshMasterArgv), so it costs no key exchange; should that be gone, ssh
 * connects on its own (ControlMaster=no never makes a stream a second master).
 */
export function opensshArgv(target: OpensshTarget, remote: readonly Argv[], controlPath?: string): Argv {
  return [
    'ssh',
    '-T',
    ...commonOptions(target),
    ...(controlPath ? ['-o', 'ControlMaster=no', '-o', `ControlPath=${controlPath}`] : []),
    '--',
    target.host,
    remoteCommand(remote),
  ];
}

/**
 * The run's one shared OpenSSH connection, started before any stream uses it: streams that each
 * tried to become the master raced ("ControlSocket … already exists, disabling multiplexing")
 * and logged in one by one. `-f` returns once logged in, with the master in the background and
 * its standard streams on /dev/null.
 */
export function opensshMasterArgv(target: OpensshTarget, controlPath: string): Argv {
  return [
    'ssh',
    '-N',
    '-f',
    ...commonOptions(target),
    '-o',
    'ControlMaster=yes',
    '-o',
    `ControlPath=${controlPath}`,
    '-o',
    `ControlPersist=${CONTROL_PERSIST_SECONDS}`,
    '--',
    target.host,
  ];
}

/** Ends a run's shared OpenSSH connection. */
export function opensshExitArgv(target: OpensshTarget, controlPath: string): Argv {
  return [
    'ssh',
    '-o',
    `ControlPath=${controlPath}`,
    '-O',
    'exit',
    '-p',
    String(target.port),
    '-l',
    target.username,
    '--',
    target.host,
  ];
}
