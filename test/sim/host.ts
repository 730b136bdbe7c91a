/** Where the simulated SmartOS host keeps its state, and the real zfs it drives. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const POOL = process.env.SIM_POOL ?? 'zones';
export const STATE = process.env.SIM_STATE ?? '/etc/zones';
export const IMGADM = process.env.SIM_IMGADM_DIR ?? '/var/imgadm';
export const SERVER_UUID = '44454c4c-4200-1034-8052-b3c04f4b4e32';
export const PLATFORM = '20250102T000612Z';

/** node:crypto on first use: loading it costs a third of a second of every stand-in call in the emulated guest. */
export const nodeCrypto = () => process.getBuiltinModule('node:crypto');

export function zfs(...args: string[]): string {
  return execFileSync('zfs', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function zfsOk(...args: string[]): boolean {
  try {
    zfs(...args);
    return true;
  } catch {
    return false;
  }
}

/** Values read ahead by prefetchZfs, keyed by dataset and property; undefined where the dataset is missing. */
const prefetched = new Map<string, string | undefined>();
/** Snapshot names (after the `@`, oldest first) read ahead by prefetchZfs, by dataset. */
const prefetchedSnapshots = new Map<string, string[]>();

/**
 * Reads the properties of many datasets in one `zfs get` for zfsGet to answer from: each zfs
 * command costs about a second in the emulated test guest, and a `vmadm get` needs a dozen values.
 * With `snapshotsOf`, the same call also lists that dataset's snapshots for snapshotNames.
 */
export function prefetchZfs(datasets: readonly string[], properties: readonly string[], snapshotsOf?: string): void {
  if (datasets.length === 0) return;
  const depth = snapshotsOf ? ['-d', '1', '-t', 'filesystem,volume,snapshot'] : [];
  const asked = snapshotsOf ? [...properties, 'createtxg'] : properties;
  let listed: string;
  try {
    listed = zfs('get', '-Hp', ...depth, '-o', 'name,property,value', asked.join(','), ...datasets);
  } catch (error) {
    // a missing dataset makes zfs exit 1 after printing the others
    listed = String((error as { stdout?: string }).stdout ?? '');
  }
  for (const dataset of datasets)
    for (const property of properties) prefetched.set(`${dataset}\t${property}`, undefined);
  const txgs: Array<[string, number]> = [];
  for (const line of listed.split('\n')) {
    const [name, property, value] = line.split('\t');
    if (!name || !property || value === undefined) continue;
    prefetched.set(`${name}\t${property}`, value);
    if (snapshotsOf && property === 'createtxg' && name.startsWith(`${snapshotsOf}@`))
      txgs.push([name.slice(snapshotsOf.length + 1), Number(value)]);
  }
  // in zfs list's order: by creation (a stable sort keeps zfs's own order within one txg)
  if (snapshotsOf && prefetched.get(`${snapshotsOf}\tcreatetxg`) !== undefined)
    prefetchedSnapshots.set(
      snapshotsOf,
      txgs.sort((a, b) => a[1] - b[1]).map(([name]) => name),
    );
}

/** `zfs list -H -t snapshot -d 1 -o name` of one dataset, the names after the `@`; [] when the dataset is missing. */
export function snapshotNames(dataset: string): string[] {
  const known = prefetchedSnapshots.get(dataset);
  if (known) return known;
  let listed = '';
  try {
    listed = zfs('list', '-H', '-t', 'snapshot', '-d', '1', '-o', 'name', dataset);
  } catch {
    // no such dataset: no snapshots
  }
  return listed
    .split('\n')
    .filter(Boolean)
    .map((name) => name.slice(name.indexOf('@') + 1));
}

/** `zfs get -Hp -o value` of one property, or undefined when the dataset is missing. */
export function zfsGet(dataset: string, property: string): string | undefined {
  const key = `${dataset}\t${property}`;
  if (prefetched.has(key)) return prefetched.get(key);
  try {
    return zfs('get', '-Hp', '-o', 'value', property, dataset).trim();
  } catch {
    return undefined;
  }
}

/** Waits for udev to create /dev/zvol/<name> (Linux), then returns the path. */
export function zvolDevice(name: string): string {
  const path = `/dev/zvol/${name}`;
  for (let i = 0; i < 100 && !existsSync(path); i++)
    execFileSync('sh', ['-c', 'udevadm settle --timeout=5 2>/dev/null; sleep 0.1']);
  if (!existsSync(path)) throw new Error(`${path} did not appear`);
  return path;
}

export interface VmRecord {
  [key: string]: unknown;
  uuid: string;
  brand: string;
  state: string;
  autoboot: boolean;
}

export function recordPath(uuid: string): string {
  return join(STATE, `${uuid}.json`);
}

export function readRecord(uuid: string): VmRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(uuid), 'utf8')) as VmRecord;
  } catch {
    return undefined;
  }
}

export function writeRecord(record: VmRecord): void {
  mkdirSync(STATE, { recursive: true });
  writeFileSync(recordPath(record.uuid), `${JSON.stringify(record, null, 2)}\n`);
}

export function removeRecord(uuid: string): void {
  rmSync(recordPath(uuid), { force: true });
  rmSync(join(STATE, `${uuid}.xml`), { force: true });
}

export function allRecords(): VmRecord[] {
  if (!existsSync(STATE)) return [];
  return readdirSync(STATE)
    .filter((f) => /^[0-9a-f-]{36}\.json$/.test(f))
    .map((f) => readRecord(f.slice(0, 36)))
    .filter((r): r is VmRecord => r !== undefined);
}

export function isUuid(value: string | undefined): value is string {
  return typeof value === 'string' && value.length === 36 && [8, 13, 18, 23].every((i) => value[i] === '-');
}

/** The zone root mountpoint (illumos path and Linux path are the same here: /zones/<uuid>). */
export function zonepath(uuid: string): string {
  return `/${POOL}/${uuid}`;
}
