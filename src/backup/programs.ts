import type { Config } from '../config/schema.js';
import type { Host } from '../host/host.js';
import { compressArgv, encryptArgv } from '../s3/streams.js';

/** A program a run will start, where, and what makes it findable. */
export interface NeededProgram {
  program: string;
  /** The setting that names it, when there is one (a full path there avoids PATH altogether). */
  setting?: string;
}

export interface ProgramsNeeded {
  local: NeededProgram[];
  remote: NeededProgram[];
}

/**
 * Every program the chosen strategy and target start, on each side, so a missing one stops the
 * run before the first snapshot instead of failing every stream (under cron, PATH is
 * /usr/sbin:/usr/bin and pkgsrc's mbuffer, zstd and gpg2 are elsewhere).
 */
export function programsNeeded(config: Config, target: 'ssh' | 's3'): ProgramsNeeded {
  const local: NeededProgram[] = [{ program: 'zfs' }];
  const remote: NeededProgram[] = [];
  if (target === 's3') {
    const s3 = config.s3!;
    for (const argv of compressArgv(s3.compression)) local.push({ program: argv[0]!, setting: 's3.compression' });
    for (const argv of encryptArgv(s3.gpgRecipient, s3)) local.push({ program: argv[0]!, setting: 's3.gpgPath' });
    return { local, remote };
  }
  remote.push({ program: 'zfs' });
  const strategy = config.transferStrategy;
  if ((strategy === 'ssh' || strategy === 'ssh_gzip') && config.sshBulkTransport === 'openssh')
    local.push({ program: 'ssh', setting: 'sshBulkTransport' });
  if (strategy === 'ssh_gzip' || strategy === 'mbuffer_gzip') {
    local.push({ program: config.compressionCmd[0]!, setting: 'compressionCmd' });
    remote.push({ program: config.decompressionCmd[0]!, setting: 'decompressionCmd' });
  }
  if (strategy === 'mbuffer' || strategy === 'mbuffer_gzip') {
    local.push({ program: config.mBufferLocalPath, setting: 'mBufferLocalPath' });
    remote.push({ program: config.mBufferRemotePath, setting: 'mBufferRemotePath' });
  }
  return { local: unique(local), remote: unique(remote) };
}

function unique(programs: NeededProgram[]): NeededProgram[] {
  return programs.filter((p, i) => programs.findIndex((q) => q.program === p.program) === i);
}

/**
 * sh's own lookup, as the run's commands will be looked up (a name on PATH, or a path that is
 * executable); the PATH it searched follows the missing names.
 */
const FIND =
  'm=; for p do command -v "$p" >/dev/null 2>&1 || { printf "%s\\n" "$p"; m=1; }; done; [ -z "$m" ] || printf "PATH=%s\\n" "$PATH"';

/** The programs of `needed` that `host` cannot start, and the PATH it looked in (one command, whatever their number). */
export async function missingPrograms(
  host: Host,
  needed: readonly NeededProgram[],
): Promise<{ missing: NeededProgram[]; path?: string }> {
  if (needed.length === 0) return { missing: [] };
  const out = await host.run(['sh', '-c', FIND, 'sh', ...needed.map((n) => n.program)], { mutates: false });
  const lines = out.stdout.split('\n').filter(Boolean);
  const path = lines.find((line) => line.startsWith('PATH='))?.slice('PATH='.length);
  const missing = new Set(lines);
  return { missing: needed.filter((n) => missing.has(n.program)), path };
}

/** Both sides checked side by side; undefined when every program is there, else the message that stops the run. */
export async function checkPrograms(
  needed: ProgramsNeeded,
  local: Host,
  remote: Host | undefined,
): Promise<string | undefined> {
  const [here, there] = await Promise.all([
    missingPrograms(local, needed.local),
    remote ? missingPrograms(remote, needed.remote) : { missing: [], path: undefined },
  ]);
  const problems = [
    ...(here.missing.length > 0 ? [missingProgramsMessage(here.missing, 'this host', here.path)] : []),
    ...(there.missing.length > 0 && remote
      ? [missingProgramsMessage(there.missing, `the backup host ${remote.label}`, there.path)]
      : []),
  ];
  return problems.length > 0 ? `${problems.join(' ')} Nothing was snapshotted.` : undefined;
}

/** What is missing, where, and how to get it: one sentence a program. */
export function missingProgramsMessage(
  missing: readonly NeededProgram[],
  where: string,
  path: string | undefined,
): string {
  const lines = missing.map((m) => {
    const name = m.program.split('/').at(-1)!;
    const install = INSTALL[name] ?? `install ${name}`;
    const setting = m.setting ? `, or name its full path in ${m.setting}` : '';
    return `${m.program} is not found on ${where}${path ? ` (PATH=${path})` : ''}: ${install}${setting}`;
  });
  return `${lines.join('; ')}.`;
}

const PKGSRC = (name: string) =>
  `on SmartOS install it with pkgin (pkgin -y install ${name}; it lands in /opt/local/bin or /opt/tools/bin, which bin/zonecopy adds to PATH), elsewhere with the system's packages`;
const INSTALL: Record<string, string> = {
  mbuffer: PKGSRC('mbuffer'),
  zstd: PKGSRC('zstd'),
  gpg: PKGSRC('gnupg2'),
  pigz: PKGSRC('pigz'),
  zfs: 'this host needs ZFS (zfs on PATH)',
  ssh: 'install the OpenSSH client, or set sshBulkTransport to "ssh2"',
};
