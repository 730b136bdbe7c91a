import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { discoverDatasets } from '../smartos/discovery.js';
import { UnknownVmError, vmadmGet } from '../smartos/vmadm.js';
import { releaseZonecopyHolds, type Hold } from '../zfs/holds.js';
import { targetDatasetName } from '../zfs/names.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { backupHostLabel, checkUuids, chooseTarget, connectBackupHost, sshTarget, UsageError } from './session.js';

export interface ReleaseFlags {
  config?: string;
  remote?: boolean;
  /** With --remote: only this target (by name, or ssh). */
  target?: string;
  dryRun?: boolean;
}

/** The hosts the command works on: this one, and a connection to each backup host (tests pass scripted ones). */
export interface ReleaseHosts {
  local: (dryRun: boolean) => Host;
  connect: (config: Config, dryRun: boolean) => Promise<Host>;
}

const REAL_HOSTS: ReleaseHosts = {
  local: (dryRun) => new LocalHost(dryRun),
  connect: (config, dryRun) => connectBackupHost(config, { dryRun }),
};

/**
 * `zonecopy release <uuid>`: zonecopy's holds on one VM's snapshots here (and with --remote on
 * every SSH target's backup host) are released, so `vmadm delete` and `vmadm rollback-snapshot`
 * can destroy them. A backup host that cannot be reached is said and makes the exit 1; the others
 * are released all the same.
 */
export async function releaseCommand(
  uuid: string,
  flags: ReleaseFlags,
  hosts: ReleaseHosts = REAL_HOSTS,
): Promise<number> {
  checkUuids([uuid]);
  if (flags.target !== undefined && !flags.remote)
    throw new UsageError(
      '--target goes with --remote: the holds on this host are released whichever target placed them',
    );
  const loaded = loadConfig(flags.config ?? defaultConfigPath());
  const dryRun = Boolean(flags.dryRun);
  // --remote: every SSH target (an object store keeps no holds); the holds here are released whichever target made them
  const remotes = flags.remote ? sshTargets(loaded, flags.target) : [];
  const local = hosts.local(dryRun);
  try {
    const { datasets } = discoverDatasets((await vmadmGet(local, uuid)).spec);
    const here = await releaseZonecopyHolds(local, datasets);
    const verb = dryRun ? 'would release' : 'released';
    const there: string[] = [];
    let failed = false;
    const print = (holds: readonly Hold[]) => {
      for (const hold of holds) process.stdout.write(`${verb} ${hold.tag} on ${hold.snapshot}\n`);
    };
    print(here);
    let released = here.length;
    for (const target of remotes) {
      const label = `the backup host ${backupHostLabel(target.config)}`;
      try {
        const remote = await hosts.connect(target.config, dryRun);
        try {
          const basePath = sshTarget(target.config).basePath;
          const holds = await releaseZonecopyHolds(
            remote,
            datasets.map((d) => targetDatasetName(basePath, d)),
          );
          print(holds);
          released += holds.length;
          there.push(`${holds.length} on ${label}${remotes.length > 1 ? ` (target ${target.name})` : ''}`);
        } finally {
          await remote.close();
        }
      } catch (error) {
        failed = true;
        process.stderr.write(`zonecopy release: ${label} (target ${target.name}): ${(error as Error).message}\n`);
      }
    }
    process.stdout.write(
      `${verb} ${here.length} hold(s) on this host${there.length ? ` and ${there.join(', ')}` : ''}\n`,
    );
    if (released > 0 && !dryRun) {
      process.stdout.write('the next backup holds its newest common snapshot again (unless --no-holds)\n');
    }
    return failed ? EXIT_FAILED : EXIT_OK;
  } catch (error) {
    if (error instanceof UnknownVmError) {
      process.stderr.write(`zonecopy release: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  } finally {
    await local.close();
  }
}

/** The SSH targets --remote releases on: all of them, or the one --target names. */
function sshTargets(config: Config, flag: string | undefined): ResolvedTarget[] {
  const chosen = selectTargets(config, flag);
  if ('error' in chosen) throw new UsageError(chosen.error);
  const ssh = chosen.filter((t) => chooseTarget(t.config, t.type) === 'ssh');
  if (ssh.length === 0)
    throw new UsageError(
      `--remote: ${flag ? `--target ${flag} is` : 'every target is'} an object store, which keeps no holds; release without --remote`,
    );
  return ssh;
}
