import { randomUUID } from 'node:crypto';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { discoverDatasets } from '../smartos/discovery.js';
import { imgadmGet, vmadmGet, type VmSpec } from '../smartos/vmadm.js';
import { pump } from '../transfer/pump.js';
import { datasetsWithin, listDatasets, type DatasetState } from '../zfs/list.js';
import { isWithin, splitSnapshot, targetDatasetName } from '../zfs/names.js';
import { pickBackupSet } from './backup-sets.js';
import { createPayload, nicChanges, type NicChange } from './create-payload.js';
import { delegatedRole, diskPropertyCommands, receiveArgv } from './received-properties.js';
import { releaseZonecopyHolds } from '../zfs/holds.js';
import { receivedRaw } from '../zfs/encryption.js';
import { ImageFileMeter, installImageFromStream } from './image-install.js';

/** What the operator asked for, whatever the backup is kept on. */
export interface RestoreRequest {
  uuid: string;
  snapshot?: string;
  newUuid: boolean;
  force: boolean;
  start: boolean;
}

export interface RestoreOptions extends RestoreRequest {
  basePath: string;
  specDirectory: string;
}

export interface RestoredDataset {
  /** Dataset name when it was backed up. */
  source: string;
  /** Where it is on the backup host. */
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
}

export class RestoreError extends Error {
  override name = 'RestoreError';
}

interface Context {
  local: Host;
  remote: Host;
  log: Log;
}

const UUID_TAIL = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * Restores a VM from the backup host onto this host: the newest complete backup set (or the one
 * asked for), its origin image installed if missing, the VM recreated from its stored spec and
 * stopped, every dataset received over its fresh one. The backup host is only read.
 */
export async function restoreVm(options: RestoreOptions, context: Context): Promise<RestoreResult> {
  const { local, remote, log } = context;
  const directory = `${options.specDirectory}/${options.uuid}`;
  const listing = await remote.run(['ls', '-1', directory], { mutates: false, allowExitCodes: [1, 2] });
  if (listing.exitCode !== 0)
    throw new RestoreError(`no backups of VM ${options.uuid} on ${remote.label}: ${directory} does not exist`);
  const specNames = listing.stdout
    .split('\n')
    .filter((f) => f.endsWith('.json') && !f.endsWith('.images.json'))
    .map((f) => f.slice(0, -'.json'.length));
  if (specNames.length === 0) throw new RestoreError(`no VM specs in ${directory} on ${remote.label}`);

  const readSpec = async (snapshot: string) =>
    JSON.parse((await remote.run(['cat', `${directory}/${snapshot}.json`], { mutates: false })).stdout) as VmSpec;
  const probe = await readSpec(specNames[specNames.length - 1]!);
  let targets = discoverDatasets(probe).datasets.map((d) => targetDatasetName(options.basePath, d));
  let remoteState = await listDatasets(remote, targets, { recursive: true });
  const chosen = pickBackupSet(specNames, targets, remoteState, options.snapshot);
  if ('error' in chosen) throw new RestoreError(`VM ${options.uuid}: ${chosen.error}`);
  const snapshot = chosen.snapshot;
  const spec = await readSpec(snapshot);
  const sources = discoverDatasets(spec).datasets;
  const chosenTargets = sources.map((d) => targetDatasetName(options.basePath, d));
  if (chosenTargets.join() !== targets.join()) {
    targets = chosenTargets;
    remoteState = await listDatasets(remote, targets, { recursive: true });
  }
  log.info(`restoring VM ${options.uuid} (${spec.alias ?? spec.brand}) from ${remote.label}, backup set ${snapshot}`);

  const uuid = options.newUuid ? randomUUID() : options.uuid;
  await makeRoom(uuid, options.force, local);
  const imagesInstalled = await ensureImages(spec, snapshot, directory, remoteState, context);

  // children made inside the zone (below its delegated dataset, say) come along, under their parents
  const below = datasetsWithin(remoteState, targets).filter(
    (d) => !targets.includes(d) && remoteState.get(d)!.snapshots.some((s) => s.name === snapshot),
  );
  const backupNameOf = new Map([
    ...sources.map((d, i) => [d, targets[i]!] as const),
    ...below.map((b) => {
      const i = targets.findIndex((t) => isWithin(b, t));
      return [sources[i]! + b.slice(targets[i]!.length), b] as const;
    }),
  ]);
  const vm = await recreateStopped(spec, uuid, [...backupNameOf.keys()], local, { copy: options.newUuid });
  const nics = options.newUuid
    ? { nics: nicChanges((spec.nics as Array<Record<string, unknown>> | undefined) ?? [], vm?.nics) }
    : {};
  if (!vm) return { uuid, snapshot, datasets: [], imagesInstalled, started: false, ...nics };
  const datasets: RestoredDataset[] = [];
  for (const { source, into } of vm.pairs) {
    const backup = backupNameOf.get(source)!;
    const origin = remoteState.get(backup)?.origin;
    const localOrigin = vm.localState.get(into)?.origin;
    const incremental =
      origin !== undefined && localOrigin !== undefined && (await sameGuid(remote, origin, local, localOrigin));
    // a backup received raw is ciphertext there: only a raw send (no key needed) gets it out
    const raw = receivedRaw(remoteState.get(backup), options.basePath) ? ['-w'] : [];
    const send = incremental
      ? ['zfs', 'send', ...raw, '-i', origin, `${backup}@${snapshot}`]
      : ['zfs', 'send', ...raw, `${backup}@${snapshot}`];
    const receive = receiveArgv(into, {
      origin: incremental ? localOrigin : undefined,
      role: delegatedRole(source, spec.datasets ?? []),
    });
    log.verbose(`${send.join(' ')} -> ${receive.join(' ')}`);
    const stream = remote.spawn([send]);
    stream.stdin.end();
    const moved = await pump(stream, local.spawn([receive]), `restore of ${backup}@${snapshot} into ${into}`);
    datasets.push({ source, backup, local: into, mode: incremental ? 'incremental' : 'full', ...moved });
  }
  await finishRestore(spec, uuid, vm, options.start, local);
  return { uuid, snapshot, datasets, imagesInstalled, started: options.start, ...nics };
}

/**
 * vmadm create from the stored spec (read-only fields stripped), stop, and clear the way: a stream
 * from a clone's origin creates its dataset and cannot land on an existing one, so the fresh
 * (empty) datasets vmadm made are destroyed and the backed-up ones received in their place, as
 * clones of the local image where they were clones. vmadm's cores dataset is mounted inside the
 * zone root, so it steps aside until finishRestore. `sources` are the backed-up datasets, vmadm's
 * first in vmadm's order, then children below them. A `copy` gets new MACs and no static IPs
 * (`nics`: what vmadm made). Undefined in a dry run.
 */
export async function recreateStopped(
  spec: VmSpec,
  uuid: string,
  sources: readonly string[],
  local: Host,
  options: { copy: boolean },
): Promise<
  | {
      pairs: Array<{ source: string; into: string }>;
      localState: Map<string, DatasetState>;
      cores: string;
      nics: Array<Record<string, unknown>>;
    }
  | undefined
> {
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
  if (local.dryRun) return undefined;
  await local.run(['vmadm', 'stop', uuid], { mutates: true, allowExitCodes: [1] });
  const top = discoverDatasets(spec).datasets;
  const created = (await vmadmGet(local, uuid)).spec;
  const fresh = discoverDatasets(created).datasets;
  if (fresh.length !== top.length)
    throw new RestoreError(
      `the recreated VM ${uuid} has ${fresh.length} datasets, the backup ${top.length}: ${fresh.join(', ')}`,
    );
  const localState = await listDatasets(local, fresh);
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

/**
 * Refuses to touch an existing VM unless --force, which deletes it first, after releasing
 * zonecopy's holds on its snapshots here: vmadm delete's `zfs destroy -r` stops at a held
 * snapshot and leaves the VM half deleted.
 */
export async function makeRoom(uuid: string, force: boolean, local: Host): Promise<void> {
  const existing = await local.run(['vmadm', 'get', uuid], { mutates: false, allowExitCodes: [1] });
  if (existing.exitCode !== 0) return;
  if (!force) {
    throw new RestoreError(
      `VM ${uuid} exists on this host; zonecopy will not overwrite it. Use --force to replace it, or --new-uuid to restore a copy beside it.`,
    );
  }
  const { datasets } = discoverDatasets((await vmadmGet(local, uuid)).spec);
  await releaseZonecopyHolds(local, datasets);
  await local.run(['vmadm', 'delete', uuid], { mutates: true });
}

async function sameGuid(a: Host, snapshotA: string, b: Host, snapshotB: string): Promise<boolean> {
  return (await guidOf(a, snapshotA)) === (await guidOf(b, snapshotB));
}

/**
 * Every image the backed-up datasets are clones of must exist here with the same @final guid, or
 * the streams cannot be received incrementally. Missing ones are installed from the backup host.
 */
async function ensureImages(
  spec: VmSpec,
  snapshot: string,
  directory: string,
  remote: ReadonlyMap<string, DatasetState>,
  context: Context,
): Promise<string[]> {
  const { local, log } = context;
  const origins = new Set([...remote.values()].flatMap((d) => (d.origin ? [d.origin] : [])));
  const installed: string[] = [];
  let manifests: Array<{ manifest?: { uuid?: string } & Record<string, unknown> }> | undefined;
  for (const origin of origins) {
    const image = UUID_TAIL.exec(splitSnapshot(origin).dataset)?.[1];
    if (!image) continue;
    const here = await imgadmGet(local, image);
    const backupGuid = await guidOf(context.remote, origin);
    if (here) {
      const localGuid = await guidOf(local, `${String(here.zpool ?? 'zones')}/${image}@final`);
      if (localGuid !== backupGuid) {
        throw new RestoreError(
          `image ${image} on this host has @final guid ${localGuid}, but VM ${spec.uuid} was cloned from guid ${backupGuid}; its datasets cannot be received over this image. Remove the local image (imgadm delete ${image}) if unused so zonecopy installs the backed-up one.`,
        );
      }
      continue;
    }
    manifests ??= await readManifests(directory, snapshot, context.remote);
    const manifest = manifests.find((m) => m.manifest?.uuid === image)?.manifest;
    if (!manifest) {
      throw new RestoreError(
        `image ${image} is not installed here and its manifest was not stored with backup ${snapshot}: import it first (imgadm import ${image}); its @final guid must be ${backupGuid}.`,
      );
    }
    log.info(`installing image ${image} from the backup host`);
    await installImageFromStream(local, image, manifest, async (file) => {
      const meter = new ImageFileMeter();
      const stream = context.remote.spawn([['zfs', 'send', origin]]);
      stream.stdin.end();
      await pump(
        stream,
        local.spawn([['sh', '-c', 'cat > "$1"', 'sh', file]]),
        `copy of image ${origin}`,
        meter.observe,
      );
      return meter.result();
    }).catch((error: Error) => {
      throw new RestoreError(`installing image ${image} from the backup host failed: ${error.message}`);
    });
    installed.push(image);
  }
  return installed;
}

export async function guidOf(host: Host, snapshot: string): Promise<string> {
  return (
    await host.run(['zfs', 'get', '-Hp', '-o', 'value', 'guid', snapshot], { mutates: false, allowExitCodes: [1] })
  ).stdout.trim();
}

async function readManifests(
  directory: string,
  snapshot: string,
  remote: Host,
): Promise<Array<{ manifest?: { uuid?: string } & Record<string, unknown> }>> {
  const out = await remote.run(['cat', `${directory}/${snapshot}.images.json`], {
    mutates: false,
    allowExitCodes: [1],
  });
  if (out.exitCode !== 0) return [];
  try {
    return JSON.parse(out.stdout) as Array<{ manifest?: { uuid?: string } & Record<string, unknown> }>;
  } catch {
    return [];
  }
}
