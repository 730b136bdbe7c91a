import { mutate, type Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import { discoverDatasets } from '../smartos/discovery.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { guidOf } from '../zfs/guid.js';
import { listDatasets } from '../zfs/list.js';
import { isValidDatasetName, isWithin, parentOf, poolOf } from '../zfs/names.js';
import { UUID_TAIL } from './ensure-images.js';
import { RestoreError } from './restore-error.js';
import type { BackupSet, OriginSnapshot, Received, RestoreSource, SetDataset } from './source.js';

/** What receiveBeside received, and where an operator finds it. */
export interface ReceivedBeside {
  /** The dataset's name when it was backed up. */
  source: string;
  /** Where the backup keeps it. */
  backup: string;
  snapshot: string;
  /** The new dataset on this host. */
  into: string;
  type: 'filesystem' | 'volume';
  /** Where a file system was mounted read-only (unset when left unmounted, or in a dry run). */
  mountpoint?: string;
  /** A volume's block device. */
  device?: string;
  /** The local image snapshot it was received as a clone of (same guid as the backed-up origin). */
  clonedFrom?: string;
  /** The set's datasets below this one, which were not received (restore each with its own name). */
  childrenLeft: string[];
  mode: Received['mode'];
  bytes: number;
  seconds: number;
}

export interface BesideOptions {
  /**
   * true: received with readonly=on and mounted (a file system), to copy files back; false: received
   * unmounted and writable as ZFS made it, for whoever mounts or reads it next (a drill).
   */
  mountReadOnly: boolean;
}

/**
 * Receives one dataset of a backup set as a NEW dataset `into` on `local`, beside the VM and never
 * over it: `into` must not exist, its parent must, and it may not be or lie within any dataset of
 * the set or of the VM as it is here now. Only that dataset (not its children) is received, with
 * zoned=off so a delegated dataset mounts in the global zone, and no holds (`zfs destroy -r into`
 * removes it all). A clone is received from the local image's snapshot when it has the backed-up
 * origin's guid, else whole when the source can send it so, else refused. Nothing changes on a
 * refusal; a receive that fails midway destroys what it made.
 */
export async function receiveBeside<S extends BackupSet>(
  set: S,
  dataset: SetDataset,
  into: string,
  context: { local: Host; source: RestoreSource<S>; log: Log },
  options: BesideOptions,
): Promise<ReceivedBeside> {
  const { local, source, log } = context;
  await checkNewName(set, into, local);
  const type = datasetType(set.spec, dataset.source);
  const origin = await localOrigin(dataset, into, local);
  if (dataset.origin && !origin && !source.sendsClonesWhole) {
    throw new RestoreError(
      `${dataset.source} was backed up as a clone of ${dataset.origin.dataset}@${dataset.origin.snapshot} (guid ${dataset.origin.guid}), and ${source.label} keeps only the stream from that origin; this host has no ${expectedOrigin(dataset.origin, into) ?? 'such image'} with that guid. Install the image (imgadm import ${UUID_TAIL.exec(dataset.origin.dataset)?.[1] ?? '<image>'}) or restore from a backup host.`,
    );
  }
  const argv = (first: boolean) =>
    besideReceiveArgv(into, { first, type, origin, mountReadOnly: options.mountReadOnly });
  const receiving = { name: into, fromOrigin: origin !== undefined, argv };
  const described = source.describeReceive(set, dataset, receiving);
  log.info(`receiving ${dataset.source}@${set.snapshot} from ${source.label} as ${into}`);
  const fallback = {
    mode: origin || described.length > 1 ? ('incremental' as const) : ('full' as const),
    bytes: 0,
    seconds: 0,
  };
  const received = await mutate(
    local,
    described,
    async () => {
      try {
        return await source.receive(set, dataset, receiving, local);
      } catch (error) {
        // a chain of streams that broke midway leaves a partial dataset that only this run made
        await local.run(['zfs', 'destroy', '-r', into], { mutates: true, allowExitCodes: [1] });
        throw error;
      }
    },
    fallback,
  );
  const where = await mountReadOnly(into, type, options, local);
  return {
    source: dataset.source,
    backup: dataset.backup,
    snapshot: set.snapshot,
    into,
    type,
    ...where,
    ...(origin ? { clonedFrom: origin } : {}),
    childrenLeft: set.datasets.map((d) => d.source).filter((d) => d !== dataset.source && isWithin(d, dataset.source)),
    ...received,
  };
}

/**
 * The set's dataset an operator named: as it was backed up (`zones/<uuid>/data`), or relative to
 * the VM's root dataset (`data` for `zones/<uuid>/data`, `disk0` for KVM's `zones/<uuid>-disk0`)
 * when only one dataset answers to it. A RestoreError listing the set's datasets otherwise. Pure.
 */
export function findSetDataset(set: Pick<BackupSet, 'spec' | 'datasets' | 'snapshot'>, name: string): SetDataset {
  const exact = set.datasets.find((d) => d.source === name);
  if (exact) return exact;
  const root = set.spec.zfs_filesystem;
  const relative = name.replace(/^\/+|\/+$/g, '');
  const candidates = relative
    ? set.datasets.filter((d) => d.source === `${root}/${relative}` || d.source === `${root}-${relative}`)
    : [];
  if (candidates.length === 1) return candidates[0]!;
  const names = set.datasets.map((d) => d.source).join(', ');
  if (candidates.length > 1)
    throw new RestoreError(
      `--dataset ${name} is ambiguous in backup set ${set.snapshot}: it could be ${candidates.map((d) => d.source).join(' or ')}; give the full name`,
    );
  throw new RestoreError(`backup set ${set.snapshot} has no dataset ${name}; its datasets are ${names}`);
}

/**
 * Why `into` cannot be a restored dataset's new name, from what is known without a host: an
 * invalid name, a pool (no parent), or a dataset of the VM (`vmDatasets`) or inside one. Pure.
 */
export function newNameProblem(into: string, vmDatasets: readonly string[]): string | undefined {
  if (!isValidDatasetName(into) || into.includes('@'))
    return `--as ${JSON.stringify(into)} is not a dataset name (such as zones/restored-data)`;
  if (parentOf(into) === undefined)
    return `--as ${into} is a pool; name a new dataset inside one (such as ${into}/restored)`;
  // the innermost dataset it lies in, the one an operator would recognise
  const over = vmDatasets.filter((d) => isWithin(into, d)).sort((a, b) => b.length - a.length)[0];
  if (over)
    return `--as ${into} ${into === over ? 'is' : 'lies inside'} the VM's dataset ${over}; a dataset is restored beside the VM, never over it: choose a name outside it (such as ${poolOf(into)}/restored-${over.split('/').pop()})`;
  return undefined;
}

/**
 * `zfs receive` into the new name: unmounted (mounted after, once every stream is in), readonly
 * when it is to be read here, a file system zoned=off (a delegated dataset would otherwise stay
 * the zone's and never mount here), a clone of the local origin. Only the first stream, which
 * creates the dataset, sets properties; they stay set through the incremental ones.
 */
export function besideReceiveArgv(
  into: string,
  options: { first: boolean; type: 'filesystem' | 'volume'; origin?: string; mountReadOnly: boolean },
): Argv {
  const first = options.first;
  return [
    'zfs',
    'receive',
    '-u',
    ...(first && options.mountReadOnly ? ['-o', 'readonly=on'] : []),
    ...(first && options.type === 'filesystem' ? ['-o', 'zoned=off'] : []),
    ...(first && options.origin ? ['-o', `origin=${options.origin}`] : []),
    into,
  ];
}

/** A disk of the spec is a volume (by its dataset, or its device path); everything else a VM has is a file system. */
export function datasetType(spec: VmSpec, source: string): 'filesystem' | 'volume' {
  const disk = (spec.disks ?? []).some(
    (d) => d.zfs_filesystem === source || d.path?.replace(/^\/dev\/zvol\/r?dsk\//, '') === source,
  );
  return disk ? 'volume' : 'filesystem';
}

async function checkNewName(set: BackupSet, into: string, local: Host): Promise<void> {
  const here = await localVmDatasets(set.vm, local);
  const problem = newNameProblem(into, [...set.datasets.map((d) => d.source), ...here]);
  if (problem) throw new RestoreError(problem);
  const parent = parentOf(into)!;
  const state = await listDatasets(local, [], { withoutSnapshots: [into, parent] });
  if (state.has(into))
    throw new RestoreError(
      `--as ${into} exists on ${local.label}; zonecopy receives into a new dataset only. Choose another name, or remove the old one first (zfs destroy -r ${into}).`,
    );
  if (!state.has(parent))
    throw new RestoreError(
      `--as ${into}: its parent ${parent} does not exist on ${local.label}; create it first (zfs create ${parent}) or choose a name under an existing dataset.`,
    );
}

/** The VM's datasets as they are here now (none when it was deleted), so a new name never lands in them. */
async function localVmDatasets(uuid: string, local: Host): Promise<string[]> {
  const got = await local.run(['vmadm', 'get', uuid], { mutates: false, allowExitCodes: [1, 2] });
  if (got.exitCode !== 0) return [];
  return discoverDatasets(JSON.parse(got.stdout) as VmSpec).datasets;
}

/** The local image snapshot the backed-up clone came from, when it is here with the same guid. */
async function localOrigin(dataset: SetDataset, into: string, local: Host): Promise<string | undefined> {
  const expected = dataset.origin && expectedOrigin(dataset.origin, into);
  if (!expected || !dataset.origin) return undefined;
  // a dry run shows the receive from the origin when the image is here at all
  const guid = await guidOf(local, expected);
  return guid === dataset.origin.guid ? expected : undefined;
}

/** A clone must be in its origin's pool: the image's snapshot on the new name's pool. */
function expectedOrigin(origin: OriginSnapshot, into: string): string | undefined {
  const image = UUID_TAIL.exec(origin.dataset)?.[1];
  return image ? `${poolOf(into)}/${image}@${origin.snapshot}` : undefined;
}

/** Mounts a file system (readonly=on came with the receive); a volume's device path instead. */
async function mountReadOnly(
  into: string,
  type: 'filesystem' | 'volume',
  options: BesideOptions,
  local: Host,
): Promise<{ mountpoint?: string; device?: string }> {
  if (type === 'volume') {
    const system = await local.run(['uname', '-s'], { mutates: false });
    // illumos names block devices dsk/ (rdsk/ raw); Linux's udev links the name itself
    const device = system.stdout.trim() === 'SunOS' ? `/dev/zvol/dsk/${into}` : `/dev/zvol/${into}`;
    return { device };
  }
  if (!options.mountReadOnly) return {};
  const mounted = await local.run(['zfs', 'mount', into], { mutates: true, allowExitCodes: [1] });
  if (mounted.exitCode !== 0)
    throw new RestoreError(
      `${into} was received but not mounted: ${mounted.stderr.trim() || `zfs mount exited ${mounted.exitCode}`} (an encrypted dataset needs its key first: zfs load-key ${into}; then zfs mount ${into}). Remove it with zfs destroy -r ${into}.`,
    );
  if (local.dryRun) return {};
  const got = await local.run(['zfs', 'get', '-H', '-o', 'value', 'mountpoint', into], { mutates: false });
  return { mountpoint: got.stdout.trim() };
}
