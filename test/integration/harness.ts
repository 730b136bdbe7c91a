/**
 * Helpers for integration tests. They run INSIDE the guest: `zones` is the SmartOS host's pool,
 * `backup` the backup host's pool, reached by zonecopy only over ssh to zcbackup@127.0.0.2 (uid 0,
 * login shell csh or dash: hosts-setup.sh). Tests may
 * inspect both pools directly with zfs, since both live in the guest's one kernel.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROJECT = process.env.ZC_PROJECT ?? '/mnt/host';
export const BASE = 'backup/zones';
/** Where the SmartOS host keeps its key and known_hosts: /opt survives a reboot, /root does not (hosts-setup.sh). */
export const KEEP = '/opt/zonecopy/etc/ssh';

// The tests' own scripts may use the GNU-only tools that hosts-setup.sh took off both hosts' PATH.
process.env.PATH = `${process.env.PATH}:/usr/local/lib/zc-gnu-only`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  file: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { maxBuffer: 64 << 20, env: { ...process.env, ...options.env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    // a child that exits without reading (pgrep, true) closes the pipe first: the exit code is what counts
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input);
  });
}

/** Runs a bash script; throws with its stderr when it fails. */
export async function sh(script: string): Promise<string> {
  const result = await run('bash', ['-c', script]);
  if (result.code !== 0) throw new Error(`bash -c ${JSON.stringify(script)} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** Fresh pools and simulator state: each test file starts from nothing. */
export async function resetHosts(): Promise<void> {
  await sh(`bash ${PROJECT}/test/guest/hosts-setup.sh reset`);
}

export interface TestConfig {
  path: string;
  logDirectory: string;
}

/** Writes a configuration.json for the in-guest hosts; `extra` overrides or adds keys. */
export function writeConfig(extra: Record<string, unknown> = {}): TestConfig {
  const dir = mkdtempSync(join(tmpdir(), 'zonecopy-test-'));
  const logDirectory = join(dir, 'log');
  const config = {
    backupDestination: '127.0.0.2',
    // uid 0 with a strict login shell (hosts-setup.sh), so every remote command must be shell-proof
    backupDestinationUsername: 'zcbackup',
    backupDestinationPrivateKeyPath: `${KEEP}/id_ed25519`,
    knownHostsPath: `${KEEP}/known_hosts`,
    backupDestinationBasePath: BASE,
    logDirectory,
    mBufferLocalBufferSize: '16M',
    mBufferRemoteBufferSize: '16M',
    ...extra,
  };
  const path = join(dir, 'configuration.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return { path, logDirectory };
}

/**
 * `bin/zonecopy …` as cron runs it on a SmartOS global zone: nothing of the caller's environment
 * but PATH=/usr/sbin:/usr/bin (illumos cron.c ROOTPATH) and HOME=/root, plus the configuration's
 * path, the test object store's credentials and ZONECOPY_TRACE when set.
 */
export function zonecopy(args: readonly string[], config?: TestConfig): Promise<Run> {
  const passed = Object.entries(process.env).filter(([key]) => key.startsWith('AWS_') || key === 'ZONECOPY_TRACE');
  const env = [
    'PATH=/usr/sbin:/usr/bin',
    'HOME=/root',
    ...passed.map(([key, value]) => `${key}=${value}`),
    ...(config ? [`ZONECOPY_CONFIG=${config.path}`] : []),
  ];
  return run('/usr/bin/env', ['-i', ...env, `${PROJECT}/bin/zonecopy`, ...args]);
}

/**
 * A reboot of the SmartOS host, as far as zonecopy can tell: /root is emptied while `during` runs;
 * afterwards root's own ssh key is put back for the tests' `ssh root@127.0.0.2`.
 */
export async function rebooted(during: () => Promise<void>): Promise<void> {
  await sh(`bash ${PROJECT}/test/guest/hosts-setup.sh reboot`);
  try {
    await during();
  } finally {
    await sh(`bash ${PROJECT}/test/guest/hosts-setup.sh root-ssh`);
  }
}

export interface Snap {
  name: string;
  guid: string;
}

/** Snapshots of one dataset, oldest first ([] when the dataset does not exist). */
export async function snapshotsOf(dataset: string): Promise<Snap[]> {
  const result = await run('zfs', [
    'list',
    '-Hp',
    '-t',
    'snapshot',
    '-d',
    '1',
    '-s',
    'createtxg',
    '-o',
    'name,guid',
    dataset,
  ]);
  if (result.code !== 0) return [];
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, guid] = line.split('\t');
      return { name: name!.split('@')[1]!, guid: guid! };
    });
}

export async function exists(dataset: string): Promise<boolean> {
  return (await run('zfs', ['list', '-H', '-o', 'name', dataset])).code === 0;
}

export async function zfsGet(dataset: string, property: string): Promise<string> {
  return (await sh(`zfs get -Hp -o value ${property} '${dataset}'`)).trim();
}

export function target(dataset: string): string {
  return [BASE, ...dataset.split('/').slice(1)].join('/');
}

/**
 * Releases every hold on the snapshots of a VM's datasets (zonecopy holds its newest common
 * snapshots, and held snapshots make `vmadm delete` fail, as on SmartOS).
 */
export async function releaseHolds(uuid: string): Promise<void> {
  await sh(
    `zfs list -H -r -t snapshot -o name $(zfs list -H -o name | grep -E '^[^/]+/${uuid}(-disk[0-9]+)?$') 2>/dev/null | xargs -r zfs holds -H | while IFS="$(printf '\\t')" read -r snap tag _; do zfs release "$tag" "$snap"; done`,
  );
}
