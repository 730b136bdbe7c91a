import { loadConfig } from '../config/load.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { discoverDatasets } from '../smartos/discovery.js';
import { UnknownVmError, vmadmGet } from '../smartos/vmadm.js';
import { releaseZonecopyHolds, type Hold } from '../zfs/holds.js';
import { targetDatasetName } from '../zfs/names.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, connectBackupHost, singleTarget, sshTarget } from './session.js';

export interface ReleaseFlags {
  config?: string;
  remote?: boolean;
  dryRun?: boolean;
}

/**
 * `zonecopy release <uuid>`: zonecopy's holds on one VM's snapshots here (and with --remote on
 * the backup host) are released, so `vmadm delete` and `vmadm rollback-snapshot` can destroy them.
 */
export async function releaseCommand(uuid: string, flags: ReleaseFlags): Promise<number> {
  checkUuids([uuid]);
  const loaded = loadConfig(flags.config ?? defaultConfigPath());
  // --remote: the (first) backup host; the holds here are released whichever target made them
  const config = flags.remote ? singleTarget(loaded, 'ssh').config : loaded;
  const dryRun = Boolean(flags.dryRun);
  const basePath = flags.remote ? sshTarget(config).basePath : '';
  const local: Host = new LocalHost(dryRun);
  try {
    const { datasets } = discoverDatasets((await vmadmGet(local, uuid)).spec);
    const here = await releaseZonecopyHolds(local, datasets);
    let there: Hold[] | undefined;
    if (flags.remote) {
      const remote = await connectBackupHost(config, { dryRun });
      try {
        there = await releaseZonecopyHolds(
          remote,
          datasets.map((d) => targetDatasetName(basePath, d)),
        );
      } finally {
        await remote.close();
      }
    }
    const verb = dryRun ? 'would release' : 'released';
    for (const hold of [...here, ...(there ?? [])]) process.stdout.write(`${verb} ${hold.tag} on ${hold.snapshot}\n`);
    process.stdout.write(
      `${verb} ${here.length} hold(s) on this host${there ? ` and ${there.length} on the backup host` : ''}\n`,
    );
    if (here.length + (there?.length ?? 0) > 0 && !dryRun) {
      process.stdout.write('the next backup holds its newest common snapshot again (unless --no-holds)\n');
    }
    return EXIT_OK;
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
