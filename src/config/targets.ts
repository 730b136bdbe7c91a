import type { Config } from './schema.js';

/** One place a run sends backups to, with the settings it uses: its own over the top level's. */
export interface ResolvedTarget {
  name: string;
  type: 'ssh' | 's3';
  /** The whole configuration as this target sees it (its `targets` entry merged over the top level). */
  config: Config;
}

/**
 * The run's targets: the `targets` list, or the one target a configuration without it describes
 * (named after its backup host, so the hold tag `zonecopy:<host>:<group>` stays as it was).
 */
export function resolveTargets(config: Config): ResolvedTarget[] {
  if (!config.targets) {
    const type = config.backupTarget;
    return [{ name: type === 's3' ? 's3' : (config.backupDestination ?? 'ssh'), type, config }];
  }
  return config.targets.map(({ name, type, ...own }) => {
    const defined = Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined));
    return { name, type, config: { ...config, ...defined, backupTarget: type, targets: undefined } };
  });
}

/**
 * The targets a command works on: the one named by `--target` (its name; `ssh` and `s3` still
 * pick by type), else every target.
 */
export function selectTargets(config: Config, flag: string | undefined): ResolvedTarget[] | { error: string } {
  const all = resolveTargets(config);
  if (flag === undefined) return all;
  const byName = all.filter((t) => t.name === flag);
  if (byName.length > 0) return byName;
  if (flag === 'ssh' || flag === 's3') {
    if (config.targets) {
      const byType = all.filter((t) => t.type === flag);
      if (byType.length > 0) return byType;
    } else
      return [
        {
          name: flag === 's3' ? 's3' : (config.backupDestination ?? 'ssh'),
          type: flag,
          config: { ...config, backupTarget: flag },
        },
      ];
  }
  if (!config.targets) return { error: `--target ${JSON.stringify(flag)}: use ssh or s3` };
  return {
    error: `--target ${JSON.stringify(flag)}: no such target; the configuration has ${all.map((t) => `"${t.name}" (${t.type})`).join(', ')}`,
  };
}
