import type { Host } from '../host/host.js';
import type { DrilledDataset } from './drill-record.js';
import type { ReceivedBeside } from './receive-beside.js';
import type { SetDataset } from './source.js';
import { checksumOn, volumeDevice, type Checksum } from './tree-checksum.js';

/** One dataset of the set as the drill received it. */
export interface DrillSubject {
  dataset: SetDataset;
  beside: ReceivedBeside;
  /** Where its read-only clone of this host's snapshot goes, in the run's dataset. */
  cloneName: string;
}

/**
 * Compares each received dataset with the backup (guid) and with the VM's own snapshot of the set
 * on this host (content), read through a read-only clone in the scratch so nothing of the VM
 * changes. `backupGuids` maps each dataset's source name to the backup's guid. Every clone is
 * made first and their mounts asked in one command: on a busy host each command costs.
 */
export async function compareReceived(
  subjects: readonly DrillSubject[],
  snapshot: string,
  backupGuids: ReadonlyMap<string, string>,
  local: Host,
  mounted: string[],
): Promise<DrilledDataset[]> {
  const names = subjects.flatMap((s) => [`${s.beside.into}@${snapshot}`, `${s.dataset.source}@${snapshot}`]);
  const guids = await guidsOf(local, names);
  const results = new Map<DrillSubject, DrilledDataset>();
  const toCompare: DrillSubject[] = [];
  for (const subject of subjects) {
    const { dataset, beside } = subject;
    const base = { source: dataset.source, type: beside.type, bytes: beside.bytes };
    const received = guids.get(`${beside.into}@${snapshot}`);
    const backup = backupGuids.get(dataset.source);
    const reference = `${dataset.source}@${snapshot}`;
    if (!received || received !== backup)
      results.set(subject, {
        ...base,
        check: 'differs',
        note: `received snapshot has guid ${received ?? '(none)'}, the backup's is ${backup || '(unknown)'}`,
      });
    else if (!guids.has(reference))
      results.set(subject, {
        ...base,
        check: 'guid-only',
        note: `no ${reference} on this host to compare content with`,
      });
    else if (dataset.raw)
      results.set(subject, { ...base, check: 'guid-only', note: 'received raw (ciphertext): no key here to read it' });
    else toCompare.push(subject);
  }
  const clones = await readOnlyClones(toCompare, snapshot, local, mounted);
  for (const subject of toCompare) {
    const { dataset, beside } = subject;
    const base = { source: dataset.source, type: beside.type, bytes: beside.bytes };
    const reference = `${dataset.source}@${snapshot}`;
    const clone = clones.get(subject);
    try {
      if (!clone || 'error' in clone) throw new Error(clone?.error ?? `no clone of ${reference}`);
      const kind = beside.type === 'volume' ? 'volume' : 'tree';
      const path = (b: { mountpoint?: string; device?: string }) => (kind === 'volume' ? b.device : b.mountpoint)!;
      const [got, want] = await Promise.all([
        checksumOn(local, kind, path(beside), `the received ${beside.into}`),
        checksumOn(local, kind, path(clone), `this host's ${reference}`),
      ]);
      const here = guids.get(reference);
      const other =
        here === backupGuids.get(dataset.source) ? '' : ` (this host's ${reference} is another snapshot: guid ${here})`;
      results.set(
        subject,
        got.sha256 === want.sha256
          ? { ...base, check: 'same', note: `${describeSame(kind, got)} as this host's ${reference}${other}` }
          : { ...base, check: 'differs', note: describeDifference(kind, reference, got, want) + other },
      );
    } catch (error) {
      results.set(subject, { ...base, check: 'failed', note: (error as Error).message });
    }
  }
  return subjects.map((s) => results.get(s)!);
}

/** The guid of each of `names` that exists on `host` (one `zfs get`; the missing ones are simply absent). */
export async function guidsOf(host: Host, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const out = await host.run(['zfs', 'get', '-Hp', '-o', 'name,value', 'guid', ...names], {
    mutates: false,
    allowExitCodes: [1],
  });
  const guids = new Map<string, string>();
  for (const line of out.stdout.split('\n')) {
    const [name, guid] = line.split('\t');
    if (name && guid && /^\d+$/.test(guid)) guids.set(name, guid);
  }
  return guids;
}

function describeSame(kind: 'tree' | 'volume', got: Checksum): string {
  return kind === 'volume' ? 'volume bytes the same' : `file tree the same (${got.entries ?? '?'} entries)`;
}

/** `file tree differs from this host's zones/x@s (sha256 1a2b… received, 3c4d… here; 120 entries received, 121 here)`. Pure. */
export function describeDifference(kind: 'tree' | 'volume', reference: string, got: Checksum, want: Checksum): string {
  const digests = `sha256 ${got.sha256.slice(0, 12)}… received, ${want.sha256.slice(0, 12)}… here`;
  const entries =
    kind === 'tree' && got.entries !== want.entries ? `; ${got.entries} entries received, ${want.entries} here` : '';
  return `${kind === 'volume' ? 'volume bytes differ' : 'file tree differs'} from this host's ${reference} (${digests}${entries})`;
}

type Clone = { mountpoint?: string; device?: string } | { error: string };

/**
 * A read-only clone of each subject's snapshot here (zoned=off, so a delegated dataset's mounts in
 * the global zone). zfs clone mounts a file system it can; one it could not is mounted after.
 */
async function readOnlyClones(
  subjects: readonly DrillSubject[],
  snapshot: string,
  local: Host,
  mounted: string[],
): Promise<Map<DrillSubject, Clone>> {
  const clones = new Map<DrillSubject, Clone>();
  for (const subject of subjects) {
    const zoned = subject.beside.type === 'filesystem' ? ['-o', 'zoned=off'] : [];
    const reference = `${subject.dataset.source}@${snapshot}`;
    const argv = ['zfs', 'clone', '-o', 'readonly=on', ...zoned, reference, subject.cloneName];
    const made = await local.run(argv, { mutates: true, allowExitCodes: [1, 2] });
    if (made.exitCode !== 0) clones.set(subject, { error: `zfs clone of ${reference} failed: ${made.stderr.trim()}` });
    else if (subject.beside.type === 'volume')
      clones.set(subject, { device: await volumeDevice(local, subject.cloneName) });
  }
  const fileSystems = subjects.filter((s) => s.beside.type === 'filesystem' && !clones.has(s));
  if (fileSystems.length === 0) return clones;
  const names = fileSystems.map((s) => s.cloneName);
  const got = await local.run(['zfs', 'get', '-H', '-o', 'name,property,value', 'mounted,mountpoint', ...names], {
    mutates: false,
  });
  const property = new Map(
    got.stdout
      .split('\n')
      .map((line) => line.split('\t'))
      .map(([name, key, value]) => [`${name} ${key}`, value ?? ''] as const),
  );
  for (const subject of fileSystems) {
    const name = subject.cloneName;
    if (property.get(`${name} mounted`) !== 'yes') await local.run(['zfs', 'mount', name], { mutates: true });
    const mountpoint = property.get(`${name} mountpoint`) ?? '';
    mounted.push(mountpoint);
    clones.set(subject, { mountpoint });
  }
  return clones;
}
