import type { Host } from '../host/host.js';
import { discoverDatasets, type Discovery } from '../smartos/discovery.js';
import { vmadmGet, type VmSpec, type VmSpecWithRaw } from '../smartos/vmadm.js';
import { datasetsWithin, listDatasets, type DatasetState } from '../zfs/list.js';
import { depth, parentOf, splitSnapshot, targetDatasetName } from '../zfs/names.js';

/** What a run knows about one VM before it changes anything: its spec and both sides' ZFS state. */
export interface VmObservation {
  spec: VmSpec;
  /** `vmadm get` output exactly as printed, stored with each backup. */
  raw: string;
  discovery: Discovery;
  /**
   * The datasets to back up: those vmadm names and everything below them (children created
   * inside a zone under its delegated dataset), minus exclusions, parents first.
   */
  datasets: string[];
  /** The VM's datasets and the origins of its clones, on the SmartOS host. */
  local: Map<string, DatasetState>;
  /** Everything the planner may ask about the backup host (see remoteNames). */
  remote: Map<string, DatasetState>;
}

type LocalObservation = Omit<VmObservation, 'remote'>;

/** vmadm get, then the SmartOS side's `zfs list` (plus one for clone origins), then the backup host's. */
export async function observeVm(
  uuid: string,
  hosts: { local: Host; remote: Host; spec?: Promise<VmSpecWithRaw> },
  basePath: string,
): Promise<VmObservation> {
  const observed = await observeLocal(uuid, hosts.local, hosts.spec);
  return { ...observed, remote: await observeRemote(observed, hosts.remote, basePath) };
}

/** The backup host's side: the targets with their snapshots, their parents and the base path. */
export async function observeRemote(
  observed: Pick<LocalObservation, 'datasets' | 'local'>,
  remote: Host,
  basePath: string,
): Promise<Map<string, DatasetState>> {
  const names = remoteNames(observed.datasets, observed.local, basePath);
  return listDatasets(remote, names.targets, { withoutSnapshots: names.parents });
}

/**
 * The SmartOS side alone: the spec, the datasets to back up, and their ZFS state with clone
 * origins. `prefetched` is a `vmadm get` of this VM already under way.
 */
export async function observeLocal(
  uuid: string,
  host: Host,
  prefetched?: Promise<VmSpecWithRaw>,
): Promise<LocalObservation> {
  const { spec, raw } = await (prefetched ?? vmadmGet(host, uuid));
  const discovery = discoverDatasets(spec);
  const local = await listDatasets(host, discovery.datasets, { recursive: true, space: true });
  const excluded = new Set(discovery.excluded);
  const datasets = [...new Set([...discovery.datasets, ...datasetsWithin(local, discovery.datasets)])]
    .filter((d) => !excluded.has(d))
    .sort((a, b) => depth(a) - depth(b));
  const origins = [...local.values()].flatMap((d) => (d.origin ? [splitSnapshot(d.origin).dataset] : []));
  const missing = origins.filter((o) => !local.has(o));
  if (missing.length > 0) for (const [name, state] of await listDatasets(host, missing)) local.set(name, state);
  return { spec, raw, discovery, datasets, local };
}

/**
 * The targets (and clone-origin targets), whose snapshots the planner compares, and their parents
 * and the base path, of which it only asks whether they exist.
 */
function remoteNames(
  datasets: readonly string[],
  local: ReadonlyMap<string, DatasetState>,
  basePath: string,
): { targets: string[]; parents: string[] } {
  const targets = new Set<string>();
  const parents = new Set<string>([basePath]);
  const add = (source: string) => {
    const target = targetDatasetName(basePath, source);
    targets.add(target);
    const parent = parentOf(target);
    if (parent) parents.add(parent);
  };
  for (const dataset of datasets) {
    add(dataset);
    const origin = local.get(dataset)?.origin;
    if (origin) add(splitSnapshot(origin).dataset);
  }
  return { targets: [...targets], parents: [...parents].filter((p) => !targets.has(p)) };
}
