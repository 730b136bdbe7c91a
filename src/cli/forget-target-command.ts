import { loadConfig } from '../config/load.js';
import { targetSchema, type Config } from '../config/schema.js';
import { resolveTargets } from '../config/targets.js';
import { CommandError, type Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { listAllHolds, releaseHolds, targetHoldPrefix, type Hold } from '../zfs/holds.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { UsageError } from './session.js';

export interface ForgetTargetFlags {
  config?: string;
  dryRun?: boolean;
}

/**
 * The holds a target that is gone for good left on this host's snapshots (tags
 * `zonecopy:<name>:<group>`, any group, all pools), released; a dry run only lists them. A target
 * still configured is refused before anything runs: its next backup would hold again.
 */
export async function forgetTarget(host: Host, config: Config, name: string, configPath: string): Promise<Hold[]> {
  const valid = targetSchema.shape.name.safeParse(name);
  if (!valid.success)
    throw new UsageError(
      `forget-target ${JSON.stringify(name)}: not a target name (letters, digits and _ . -, at most 64, a letter or digit first)`,
    );
  const configured = resolveTargets(config).map((t) => t.name);
  if (configured.includes(name))
    throw new UsageError(
      `forget-target ${JSON.stringify(name)}: it is still a target in ${configPath}, so the next backup would hold its snapshots again; ` +
        `remove it from the configuration (${config.targets ? '"targets"' : 'backupDestination/backupTarget'}) first, then run forget-target again`,
    );
  const prefix = targetHoldPrefix(name);
  const holds = (await listAllHolds(host)).filter((h) => h.tag.startsWith(prefix));
  await releaseHolds(host, holds);
  return holds;
}

/** `zonecopy forget-target NAME`: drops a target that is gone for good by releasing its holds here. */
export async function forgetTargetCommand(name: string, flags: ForgetTargetFlags): Promise<number> {
  const configPath = flags.config ?? defaultConfigPath();
  const config = loadConfig(configPath);
  const dryRun = Boolean(flags.dryRun);
  const local = new LocalHost(dryRun);
  try {
    const holds = await forgetTarget(local, config, name, configPath);
    process.stdout.write(forgetTargetReport(name, holds, dryRun));
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommandError) {
      process.stderr.write(`zonecopy forget-target: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  } finally {
    await local.close();
  }
}

/** A line per hold released (or that a dry run would release) and the count. */
export function forgetTargetReport(name: string, holds: readonly Hold[], dryRun: boolean): string {
  if (holds.length === 0)
    return `no holds of target ${JSON.stringify(name)} on this host (tags ${targetHoldPrefix(name)}<group>)\n`;
  const verb = dryRun ? 'would release' : 'released';
  const lines = holds.map((h) => `${verb} ${h.tag} on ${h.snapshot}`);
  return [...lines, `${verb} ${holds.length} hold(s) of target ${JSON.stringify(name)} on this host`, ''].join('\n');
}
