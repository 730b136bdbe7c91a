import { randomUUID } from 'node:crypto';
import { mutate, type Host } from '../host/host.js';
import type { Log } from '../log.js';
import { discoverDatasets } from '../smartos/discovery.js';
import { vmadmGet, type VmSpec } from '../smartos/vmadm.js';
import { guidOf } from '../zfs/guid.js';
import { listDatasets, type DatasetState } from '../zfs/list.js';
import { isWithin, poolOf } from '../zfs/names.js';
import { createPayload, nicChanges, type NicChange } from './create-payload.js';
import { ensureImages, UUID_TAIL } from './ensure-images.js';
import { delegatedRole, diskPropertyCommands, receiveArgv } from './received-properties.js';
import { addNeed, checkBrand, checkNicConflicts, checkRoom, type PoolNeeds } from './preflight.js';
import { replaceVm } from './replace-vm.js';
import { RestoreError } from './restore-error.js';
import type { BackupSet, OriginSnapshot, RestoreSource } from './source.js';

export { RestoreError };

/** What the operator asked for, whatever the backup is kept on. */
export interface RestoreRequest {
  uuid: string;
  snapshot?: string;
  newUuid: boolean;
  force: boolean;
  start: boolean;
}

export interface RestoredDataset {
  /** Dataset name when it was backed up. */
  source: string;
  /** Where the backup keeps it (backup-host dataset, newest object key). */
  backup: string;
  /** The VM's dataset on this host now. */
  local: string;
  mode: 'incremental' | 'full';
  bytes: number;
  seconds: number;
}

export interface RestoreResult {
  uuid: string;
  snapshot: string;
  datasets: RestoredDataset[];
  imagesInstalled: string[];
  started: boolean;
  /** A copy (--new-uuid): what its nics lost so that vmadm accepts it beside the original. */
  nics?: NicChange[];
  /** --force over the VM that was here: received beside it, swapped in, the old copy removed. */
  replaced?: boolean;
  /** Old copies that could not be removed after the swap (named for the operator). */
  kept?: string[];
}

/**
 * Restores a VM onto this host from either target: the newest complete backup set (or the one
 * asked for), every stream it needs verified first, its origin images checked or installed, the
 * VM recreated from its stored spec and stopped, every dataset received over its fresh one. The
 * source is only read.
 */
export async function restoreVm<S extends BackupSet>(
  options: RestoreRequest,
  context: { local: Host; source: RestoreSource<S>; log: Log; target?: string },
): Promise<RestoreResult> {
  const { local, source, log } = context;
  const set = await source.readSet(options.uuid, options.snapshot);
  const { spec, snapshot } = set;
  const from = context.target ?? source.label;
  log.info(`restoring ${options.uuid} from ${from} set ${snapshot} (${spec.alias ?? spec.brand}, ${source.label})`);
  await source.verify(set, { readStreams: !local.dryRun });

  const uuid = options.newUuid ? randomUUID() : options.uuid;
  const existing = await existingVm(uuid, local);
  if (existing && !options.force)
    throw new RestoreError(
      `VM ${uuid} exists on this host; zonecopy will not overwrite it. Use --force to replace it (it is kept until the backup is completely here), or --new-uuid to restore a copy beside it.`,
    );
  checkBrand(spec);
  // a copy gets new MACs and no static IPs; the VM being replaced gives its own up
  if (!options.newUuid) await checkNicConflicts(spec, uuid, local);
  const imagesInstalled = await ensureImages(set, source, local, log);
  if (existing) {
    const { datasets, kept } = await replaceVm({ uuid, start: options.start }, { local, source, log, set, existing });
    return {
      uuid,
      snapshot,
      datasets,
      imagesInstalled,
      started: options.start,
      replaced: true,
      ...(kept.length ? { kept } : {}),
    };
  }
  await checkRoom(await freshNeeds(set, source, local), local);
  const sources = set.datasets.map((d) => d.source);
  const vm = await recreateStopped(spec, uuid, sources, local, { copy: options.newUuid });
  const nics = options.newUuid
    ? { nics: nicChanges((spec.nics as Array<Record<string, unknown>> | undefined) ?? [], vm?.nics) }
    : {};
  const datasets: RestoredDataset[] = [];
  for (const { source: name, into } of vm.pairs) {
    const dataset = set.datasets.find((d) => d.source === name)!;
    const { origin } = dataset;
    // a dry run created nothing: it shows the receive of a restore whose clone has the origin's guid
    const localOrigin = local.dryRun ? expectedOrigin(into, origin) : vm.localState.get(into)?.origin;
    const fromOrigin =
      origin !== undefined &&
      localOrigin !== undefined &&
      (local.dryRun || (await guidOf(local, localOrigin)) === origin.guid);
    if (origin && !fromOrigin && !source.sendsClonesWhole) {
      throw new RestoreError(
        `${name} was backed up as a clone of ${origin.dataset}@${origin.snapshot} (guid ${origin.guid}), but the recreated ${into} is ${localOrigin ? `a clone of ${localOrigin} with another guid` : 'not a clone'}`,
      );
    }
    const role = delegatedRole(name, spec.datasets ?? []);
    // only the first stream creates the dataset: later ones cannot set its origin or zoned again
    const argv = (first: boolean) =>
      receiveArgv(into, {
        origin: first && fromOrigin ? localOrigin : undefined,
        role: first || !role ? role : 'below-delegated',
      });
    const receiving = { name: into, fromOrigin, argv };
    const described = source.describeReceive(set, dataset, receiving);
    const received = await mutate(local, described, () => source.receive(set, dataset, receiving, local), {
      mode: fromOrigin || described.length > 1 ? ('incremental' as const) : ('full' as const),
      bytes: 0,
      seconds: 0,
    });
    datasets.push({ source: name, backup: dataset.backup, local: into, ...received });
  }
  await finishRestore(spec, uuid, vm, options.start, local);
  return { uuid, snapshot, datasets, imagesInstalled, started: options.start, ...nics };
}

/** The VM as `vmadm get` prints it (every field, for recreating it), when it exists here. */
async function existingVm(uuid: string, local: Host): Promise<VmSpec | undefined> {
  const got = await local.run(['vmadm', 'get', uuid], { mutates: false, allowExitCodes: [1] });
  return got.exitCode === 0 ? (JSON.parse(got.stdout) as VmSpec) : undefined;
}

/** Room a restore onto no VM needs: each stream (from its image where the image here has the origin's guid), or a zvol's reservation. */
async function freshNeeds<S extends BackupSet>(set: S, source: RestoreSource<S>, local: Host): Promise<PoolNeeds> {
  const needs: PoolNeeds = new Map();
  for (const dataset of set.datasets) {
    const pool = poolOf(dataset.source);
    const origin = dataset.origin && (await localOrigin(local, pool, dataset.origin));
    const into = { name: dataset.source, fromOrigin: origin !== undefined, argv: () => [] };
    addNeed(needs, set.spec, dataset.source, await source.estimate(set, dataset, into));
  }
  return needs;
}

/** The snapshot here with a clone's origin guid: of the image (named by its UUID) on `pool`, or of the origin's own dataset. */
export async function localOrigin(local: Host, pool: string, origin: OriginSnapshot): Promise<string | undefined> {
  const image = UUID_TAIL.exec(origin.dataset)?.[1];
  const dataset = image ? `${pool}/${image}` : origin.dataset;
  const snapshots = (await listDatasets(local, [dataset])).get(dataset)?.snapshots ?? [];
  const found = snapshots.find((s) => s.guid === origin.guid);
  return found ? `${dataset}@${found.name}` : undefined;
}

/** The local origin a recreated clone has when it is the backed-up one: the image's snapshot, on the VM's pool. */
function expectedOrigin(into: string, origin: OriginSnapshot | undefined): string | undefined {
  const image = origin && UUID_TAIL.exec(origin.dataset)?.[1];
  return (
    origin && (image ? `${into.split('/')[0]}/${image}@${origin.snapshot}` : `${origin.dataset}@${origin.snapshot}`)
  );
}

/**
 * vmadm create from the stored spec (read-only fields stripped), stop, and clear the way: a stream
 * from a clone's origin creates its dataset and cannot land on an existing one, so the fresh
 * (empty) datasets vmadm made are destroyed and the backed-up ones received in their place, as
 * clones of the local image where they were clones. vmadm's cores dataset is mounted inside the
 * zone root, so it steps aside until finishRestore. `sources` are the backed-up datasets, vmadm's
 * first in vmadm's order, then children below them. A `copy` gets new MACs and no static IPs
 * (`nics`: what vmadm made; none in a dry run).
 */
export async function recreateStopped(
  spec: VmSpec,
  uuid: string,
  sources: readonly string[],
  local: Host,
  options: { copy: boolean },
): Promise<{
  pairs: Array<{ source: string; into: string }>;
  localState: Map<string, DatasetState>;
  cores: string;
  nics: Array<Record<string, unknown>>;
}> {
  const payload = createPayload(spec, { uuid, copy: options.copy });
  const creation = await local.run(['vmadm', 'create'], {
    mutates: true,
    input: JSON.stringify(payload),
    allowExitCodes: [1],
  });
  if (creation.exitCode !== 0) {
    const why = creation.stderr.trim().split('\n').slice(-3).join(' / ');
    const hint = /Conflict detected/.test(why)
      ? ' Another VM on this host has one of its MACs or IPs: restore a copy with --new-uuid (new MACs, no static IPs), or delete that VM first.'
      : '';
    throw new RestoreError(`vmadm create of VM ${uuid} on ${local.label} failed: ${why}.${hint}`);
  }
  await local.run(['vmadm', 'stop', uuid], { mutates: true, allowExitCodes: [1] });
  const top = discoverDatasets(spec).datasets;
  // a dry run has no VM to ask: vmadm names the datasets after the VM's UUID, as they were
  const created = local.dryRun ? { nics: [] } : (await vmadmGet(local, uuid)).spec;
  const fresh = local.dryRun
    ? top.map((d) => d.split(spec.uuid).join(uuid))
    : discoverDatasets(created as VmSpec).datasets;
  if (fresh.length !== top.length)
    throw new RestoreError(
      `the recreated VM ${uuid} has ${fresh.length} datasets, the backup ${top.length}: ${fresh.join(', ')}`,
    );
  const localState = local.dryRun ? new Map<string, DatasetState>() : await listDatasets(local, fresh);
  const pairs = sources.map((source) => {
    const i = top.findIndex((t) => t === source || isWithin(source, t));
    if (i < 0) throw new RestoreError(`backed-up dataset ${source} is not part of the VM's spec`);
    return { source, into: fresh[i]! + source.slice(top[i]!.length) };
  });
  const cores = `${fresh[0]!.split('/')[0]}/cores/${uuid}`;
  await local.run(['zfs', 'unmount', cores], { mutates: true, allowExitCodes: [1] });
  for (const d of fresh.filter((d) => !fresh.some((p) => p !== d && isWithin(d, p))))
    await local.run(['zfs', 'destroy', '-r', d], { mutates: true });
  return { pairs, localState, cores, nics: (created.nics as Array<Record<string, unknown>> | undefined) ?? [] };
}

/** Properties are not in the streams: vmadm sets its own again (quota; bhyve's refquota and reservations), zvols get their refreservation back. */
export async function finishRestore(
  spec: VmSpec,
  uuid: string,
  vm: { cores: string; pairs: ReadonlyArray<{ source: string; into: string }> },
  start: boolean,
  local: Host,
): Promise<void> {
  await local.run(['zfs', 'mount', vm.cores], { mutates: true, allowExitCodes: [1] });
  for (const argv of diskPropertyCommands(spec, vm.pairs)) await local.run(argv, { mutates: true });
  if (typeof spec.quota === 'number')
    await local.run(['vmadm', 'update', uuid, `quota=${spec.quota}`], { mutates: true });
  if (start) await local.run(['vmadm', 'start', uuid], { mutates: true });
}
