import { readFileSync } from 'node:fs';
import type * as z from 'zod';
import { installRoot } from '../cli/paths.js';
import { currentPlatform, lostAtReboot, pathDefaults, type Platform } from './platform.js';
import { configSchema, sectionKeys, type Config, type ConfigInput } from './schema.js';

/** A configuration that cannot be used: the message names the file, the key and what is expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(path: string, platform: Platform = currentPlatform(installRoot())): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT' ? ' Copy configuration.json.example to that path and edit it, or pass --config PATH.' : '';
    throw new ConfigError(`cannot read the configuration ${path}: ${code ?? (error as Error).message}.${hint}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${(error as Error).message}${position(text, error as Error)}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(`${path}: expected a JSON object of settings`);
  return validate(json, path, {}, platform);
}

/** CLI flags override the file; they are validated by the same schema, under their flag names. */
export function applyOverrides(
  config: Config,
  overrides: Partial<Record<keyof ConfigInput, unknown>>,
  flagNames: Partial<Record<string, string>> = {},
  platform: Platform = currentPlatform(installRoot()),
): Config {
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  if (Object.keys(given).length === 0) return config;
  const { notifiers: _derived, ...input } = config;
  return validate({ ...input, ...given }, 'command line', flagNames, platform);
}

function validate(
  json: object,
  source: string,
  flagNames: Partial<Record<string, string>>,
  platform: Platform,
): Config {
  const result = configSchema.safeParse(withPathDefaults(json, platform), { reportInput: true });
  if (!result.success)
    throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, source, flagNames)).join('\n'));
  const lost = pathsLostAtReboot(result.data, platform);
  if (lost.length > 0) throw new ConfigError(lost.map((line) => `${source}: ${line}`).join('\n'));
  return result.data;
}

/** The platform's defaults for the key, known_hosts, gpg home and AWS files, where the file sets none. */
function withPathDefaults(json: object, platform: Platform): object {
  const defaults = pathDefaults(platform);
  const input = json as Record<string, unknown>;
  const filled: Record<string, unknown> = { ...input };
  filled.knownHostsPath ??= defaults.knownHostsPath;
  if (defaults.privateKeyPath) filled.backupDestinationPrivateKeyPath ??= defaults.privateKeyPath;
  const withS3Defaults = (section: unknown): unknown => {
    if (typeof section !== 'object' || section === null || Array.isArray(section)) return section;
    const s3: Record<string, unknown> = { ...(section as Record<string, unknown>) };
    if (defaults.gpgHome) s3.gpgHome ??= defaults.gpgHome;
    if (defaults.awsCredentialsFile) s3.credentialsFile ??= defaults.awsCredentialsFile;
    if (defaults.awsConfigFile) s3.configFile ??= defaults.awsConfigFile;
    return s3;
  };
  if (input.s3 !== undefined) filled.s3 = withS3Defaults(input.s3);
  if (Array.isArray(input.targets))
    filled.targets = input.targets.map((t: unknown) =>
      typeof t === 'object' && t !== null && 's3' in t ? { ...t, s3: withS3Defaults(t.s3) } : t,
    );
  return filled;
}

/** Keys and credentials configured where a reboot of a SmartOS global zone wipes them: each line names the key, the path and where to put it instead. */
function pathsLostAtReboot(config: Config, platform: Platform): string[] {
  const defaults = pathDefaults(platform);
  const sections = [
    { at: '', section: config as Pick<Config, 'backupDestinationPrivateKeyPath' | 'knownHostsPath' | 's3'> },
    ...(config.targets ?? []).map((section, i) => ({ at: `targets.${i}.`, section })),
  ];
  const paths: Array<[string, string | undefined, string | undefined]> = sections.flatMap(({ at, section }) => [
    [`${at}backupDestinationPrivateKeyPath`, section.backupDestinationPrivateKeyPath, defaults.privateKeyPath],
    [`${at}knownHostsPath`, section.knownHostsPath, defaults.knownHostsPath],
    [`${at}s3.gpgHome`, section.s3?.gpgHome, defaults.gpgHome],
    [`${at}s3.credentialsFile`, section.s3?.credentialsFile, defaults.awsCredentialsFile],
    [`${at}s3.configFile`, section.s3?.configFile, defaults.awsConfigFile],
  ]);
  return paths.flatMap(([key, path, persistent]) => {
    const why = path === undefined ? undefined : lostAtReboot(path, platform);
    return why
      ? [
          `"${key}": ${path} would be gone after a reboot (${why}); move it to ${persistent} (persistent) and set "${key}" to that path, or leave "${key}" out to use it`,
        ]
      : [];
  });
}

function describeIssue(issue: z.core.$ZodIssue, source: string, flagNames: Partial<Record<string, string>>): string {
  const key = issue.path.map(String).join('.') || '(top level)';
  const where = flagNames[key] ? `${flagNames[key]} (${key})` : key;
  if (issue.code === 'unrecognized_keys') {
    const section = issue.path.map(String).join('.');
    const dotted = (k: string) => (section ? `${section}.${k}` : k);
    return issue.keys
      .map(
        (k) =>
          `${source}: unknown key "${dotted(k)}"${suggest(k, sectionKeys(section), dotted)}; see configuration.json.example for the valid keys`,
      )
      .join('\n');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined)
    return `${source}: "${where}" is required (${issue.message.replace(/^Invalid input: /, '')})`;
  return `${source}: "${where}": ${issue.message.replace(/^Invalid input: /, '')}`;
}

/** The nearest of the keys valid beside `key` (its own section's), named by its dotted path. */
function suggest(key: string, candidates: readonly string[], dotted: (key: string) => string): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best && bestDistance <= Math.max(2, Math.floor(key.length / 5)) ? ` (did you mean "${dotted(best)}"?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

function position(text: string, error: Error): string {
  const at = Number(error.message.match(/position (\d+)/)?.[1]);
  if (!Number.isFinite(at)) return '';
  const before = text.slice(0, at).split('\n');
  return ` (line ${before.length}, column ${before[before.length - 1]!.length + 1})`;
}
