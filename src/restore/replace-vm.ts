import { mutate, type Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import { discoverDatasets } from '../smartos/discovery.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { releaseZonecopyHolds } from '../zfs/holds.js';
import { listDatasets, type DatasetState, type SnapshotInfo } from '../zfs/list.js';
import { isWithin, poolOf } from '../zfs/names.js';
import { addNeed, checkRoom, type PoolNeeds } from './preflight.js';
import { delegatedRole, receiveArgv } from './received-properties.js';
import { RestoreError } from './restore-error.js';
import type { RestoredDataset } from './restore-vm.js';
import type { BackupSet, ReceiveInto, RestoreSource, SetDataset, SnapshotRef } from './source.js';
import { finishRestore, localOrigin, recreateStopped } from './restore-vm.js';

/** Where a --force restore receives the backup beside the VM, and where the VM's own datasets step aside until it is done. */
export const STAGED = '-zonecopy-restoring';
export const ASIDE = '-zonecopy-replaced';

/** The datasets not inside another of the list: a rename of each moves everything below it. */
export function topsOf(datasets: readonly string[]): string[] {
  return datasets.filter((d) => !datasets.some((p) => p !== d && isWithin(d, p)));
}

/** `name` with the top dataset it lies in renamed by `suffix`. */
export function withSuffix(name: string, tops: readonly string[], suffix: string): string {
  const top = tops.find((t) => t === name || isWithin(name, t));
  if (!top) throw new Error(`${name} is not within ${tops.join(', ')}`);
  return top + suffix + name.slice(top.length);
}

/** The newest snapshot this host still has (compared by guid) of a dataset's history in the backup. */
export function sharedBase(
  here: readonly SnapshotInfo[],
  history: readonly SnapshotRef[] | undefined,
): { local: string; ref: SnapshotRef } | undefined {
  const byGuid = new Map((history ?? []).map((h) => [h.guid, h]));
  const newest = [...here].sort((a, b) => b.createtxg - a.createtxg).find((s) => byGuid.has(s.guid));
  return newest ? { local: newest.name, ref: byGuid.get(newest.guid)! } : undefined;
}

interface Staging {
  dataset: SetDataset;
  /** The VM's dataset once restored (the name it was backed up under: same UUID, same pool). */
  final: string;
  staged: string;
  /** A snapshot the VM here shares with the backup: the staged copy is a clone of it, then promoted. */
  base?: { local: string; ref: SnapshotRef };
  /** The base is the set's own snapshot: a local clone, nothing to receive. */
  cloneOnly: boolean;
  /** A delegated dataset: zoned=on, never mounted here. */
  zoned: boolean;
  into: ReceiveInto;
}

type Phase = 'running' | 'stopped' | 'aside' | 'deleted' | 'created' | 'swapped';
const ORDER: readonly Phase[] = ['running', 'stopped', 'aside', 'deleted', 'created', 'swapped'];
const reached = (phase: Phase, than: Phase) => ORDER.indexOf(phase) >= ORDER.indexOf(than);

/**
 * `restore --force` over a VM that exists: nothing of it is destroyed until the backup's data is
 * completely here. Every dataset is received beside it (as a clone of a snapshot it still shares
 * with the backup, so only what changed comes), then the VM is stopped, its datasets renamed
 * aside, vmadm deletes what is left (placeholders), recreates it from the set's spec, the received
 * datasets are renamed into place, and only then the old copy is removed. A failure before that
 * puts the VM back as it was, running again if it ran.
 */
export async function replaceVm<S extends BackupSet>(
  request: { uuid: string; start: boolean },
  context: { local: Host; source: RestoreSource<S>; log: Log; set: S; existing: VmSpec },
): Promise<{ datasets: RestoredDataset[]; kept: string[] }> {
  const { local, source, log, set, existing } = context;
  const { uuid } = request;
  const oldDatasets = discoverDatasets(existing).datasets;
  const oldTops = topsOf(oldDatasets);
  const newTops = topsOf(set.datasets.map((d) => d.source));
  await clearLeftovers(local, uuid, [...new Set([...oldTops, ...newTops])], newTops, log);

  const oldState = await listDatasets(local, oldTops, { recursive: true });
  const stagings = await planStagings(set, source, local, newTops, oldState);
  await checkRoom(await poolNeeds(stagings, set, source), local);

  const datasets = await receiveBeside(stagings, set, source, local, { uuid, newTops, state: existing.state });

  const swap = new Swap(local, uuid, existing, oldDatasets, oldTops, newTops, oldState);
  try {
    const vm = await swap.run(set, stagings);
    await finishRestore(set.spec, uuid, vm, request.start, local);
  } catch (error) {
    const undone = await swap.rollBack();
    throw new RestoreError(
      `restoring VM ${uuid} over itself failed while ${swap.doing}: ${(error as Error).message.replace(/\.$/, '')}. ${undone}`,
    );
  }
  return { datasets, kept: await removeReplaced(local, oldTops, log) };
}

/**
 * A copy an earlier restore left aside is the VM's previous data: never destroyed here, the
 * operator decides. A staged copy is only a partial receive (the swap never began), so it goes.
 */
async function clearLeftovers(
  local: Host,
  uuid: string,
  tops: readonly string[],
  newTops: readonly string[],
  log: Log,
): Promise<void> {
  const found = await listDatasets(local, [...tops.map((t) => t + ASIDE), ...newTops.map((t) => t + STAGED)]);
  const aside = tops.map((t) => t + ASIDE).filter((d) => found.has(d));
  if (aside.length)
    throw new RestoreError(
      `an interrupted restore of VM ${uuid} left its previous datasets at ${aside.join(', ')}; check VM ${uuid} and keep them (zfs rename back) or remove them (zfs destroy -r) before restoring again; nothing was changed.`,
    );
  for (const staged of newTops.map((t) => t + STAGED).filter((d) => found.has(d))) {
    log.warn(`removing ${staged}, left by an interrupted restore before it replaced anything`);
    await local.run(['zfs', 'destroy', '-r', staged], { mutates: true });
  }
}

/** How each dataset of the set comes beside the VM: from a snapshot it still shares, from its image, or whole. */
async function planStagings<S extends BackupSet>(
  set: S,
  source: RestoreSource<S>,
  local: Host,
  newTops: readonly string[],
  oldState: ReadonlyMap<string, DatasetState>,
): Promise<Staging[]> {
  const stagings: Staging[] = [];
  for (const dataset of set.datasets) {
    const final = dataset.source;
    const staged = withSuffix(final, newTops, STAGED);
    const old = oldState.get(final);
    const base = !dataset.raw && old ? sharedBase(old.snapshots, dataset.history) : undefined;
    const head = dataset.history?.[dataset.history.length - 1];
    const origin = base ? `${final}@${base.local}` : await cloneOrigin(dataset, final, source, local);
    const role = delegatedRole(final, set.spec.datasets ?? []);
    const into: ReceiveInto = {
      name: staged,
      fromOrigin: !base && origin !== undefined,
      ...(base ? { base: base.ref } : {}),
      argv: (first) =>
        receiveArgv(staged, {
          origin: first ? origin : undefined,
          role: first || !role ? role : 'below-delegated',
        }),
    };
    stagings.push({
      dataset,
      final,
      staged,
      ...(base ? { base } : {}),
      cloneOnly: base !== undefined && head?.guid === base.ref.guid,
      zoned: role === 'delegated',
      into,
    });
  }
  return stagings;
}

/** The local snapshot a clone is received from (its origin's guid here), or undefined to receive it whole. */
async function cloneOrigin<S extends BackupSet>(
  dataset: SetDataset,
  final: string,
  source: RestoreSource<S>,
  local: Host,
): Promise<string | undefined> {
  if (!dataset.origin) return undefined;
  const here = await localOrigin(local, poolOf(final), dataset.origin);
  if (here || source.sendsClonesWhole) return here;
  throw new RestoreError(
    `${dataset.source} was backed up as a clone of ${dataset.origin.dataset}@${dataset.origin.snapshot} (guid ${dataset.origin.guid}), which this host does not have, and ${source.label} keeps only the stream from it; nothing was changed.`,
  );
}

/** Room for the received streams beside the VM, and for each zvol's reservation. */
async function poolNeeds<S extends BackupSet>(
  stagings: readonly Staging[],
  set: S,
  source: RestoreSource<S>,
): Promise<PoolNeeds> {
  const needs: PoolNeeds = new Map();
  for (const s of stagings) {
    addNeed(needs, set.spec, s.final, s.cloneOnly ? 0 : await source.estimate(set, s.dataset, s.into));
  }
  return needs;
}

/** Phase one: every dataset received (or cloned) under its staged name; on failure the staged copy goes and the VM was never touched. */
async function receiveBeside<S extends BackupSet>(
  stagings: readonly Staging[],
  set: S,
  source: RestoreSource<S>,
  local: Host,
  vm: { uuid: string; newTops: readonly string[]; state: unknown },
): Promise<RestoredDataset[]> {
  const datasets: RestoredDataset[] = [];
  try {
    for (const s of stagings) {
      const received = s.cloneOnly
        ? await cloneBase(s, local)
        : await mutate(
            local,
            source.describeReceive(set, s.dataset, s.into),
            () => source.receive(set, s.dataset, s.into, local),
            { mode: s.base || s.into.fromOrigin ? ('incremental' as const) : ('full' as const), bytes: 0, seconds: 0 },
          );
      datasets.push({ source: s.dataset.source, backup: s.dataset.backup, local: s.final, ...received });
    }
  } catch (error) {
    const staged = vm.newTops.map((t) => t + STAGED);
    const present = await listDatasets(local, staged);
    for (const d of staged.filter((name) => present.has(name)))
      await local.run(['zfs', 'destroy', '-r', d], { mutates: true });
    throw new RestoreError(
      `receiving backup set ${set.snapshot} beside VM ${vm.uuid} failed: ${(error as Error).message}. VM ${vm.uuid} was not touched (it is ${String(vm.state)}) and the partial copy was removed; run the restore again.`,
    );
  }
  return datasets;
}

async function cloneBase(s: Staging, local: Host) {
  const zoned = s.zoned ? ['-o', 'zoned=on'] : [];
  await local.run(['zfs', 'clone', ...zoned, `${s.final}@${s.base!.local}`, s.staged], { mutates: true });
  return { mode: 'incremental' as const, bytes: 0, seconds: 0 };
}

/** Phase two, and how to undo each step of it. */
class Swap {
  phase: Phase = 'running';
  doing = 'stopping the VM';
  private readonly promoted: string[] = [];

  constructor(
    private readonly local: Host,
    private readonly uuid: string,
    private readonly existing: VmSpec,
    private readonly oldDatasets: readonly string[],
    private readonly oldTops: readonly string[],
    private readonly newTops: readonly string[],
    private readonly oldState: ReadonlyMap<string, DatasetState>,
  ) {}

  private get wasRunning(): boolean {
    return this.existing.state === 'running';
  }

  private zfs(...args: string[]) {
    return this.local.run(['zfs', ...args], { mutates: true });
  }

  private get cores(): string {
    return `${poolOf(this.oldTops[0]!)}/cores/${this.uuid}`;
  }

  async run(set: BackupSet, stagings: readonly Staging[]) {
    if (this.wasRunning) await this.local.run(['vmadm', 'stop', this.uuid], { mutates: true });
    this.phase = 'stopped';
    this.doing = 'moving its datasets aside';
    await this.local.run(['zfs', 'unmount', this.cores], { mutates: true, allowExitCodes: [1] });
    for (const top of this.oldTops) {
      await this.zfs('rename', top, top + ASIDE);
      // vmadm delete then destroys an empty dataset of the kind it expects, whatever it does about missing ones
      await this.local.run(placeholder(top, this.oldState.get(top)?.type), { mutates: true });
    }
    this.phase = 'aside';
    this.doing = 'deleting the VM (its data aside)';
    await this.local.run(['vmadm', 'delete', this.uuid], { mutates: true });
    this.phase = 'deleted';
    this.doing = 'creating the VM from the backup set';
    const sources = set.datasets.map((d) => d.source);
    const vm = await recreateStopped(set.spec, this.uuid, sources, this.local, { copy: false });
    this.phase = 'created';
    const moved = vm.pairs.find((p) => p.into !== p.source);
    if (moved) throw new Error(`vmadm named ${moved.source} ${moved.into}`);
    this.doing = 'renaming the received datasets into place';
    for (const top of this.newTops) await this.zfs('rename', top + STAGED, top);
    this.phase = 'swapped';
    this.doing = 'taking over the snapshots the restore started from';
    for (const s of stagings.filter((st) => st.base)) {
      await this.zfs('promote', s.final);
      this.promoted.push(s.final);
    }
    this.doing = 'setting its properties and starting it';
    return vm;
  }

  /** Puts the VM back as it was; says what it did, or exactly where its data is when it could not. */
  async rollBack(): Promise<string> {
    const aside = this.oldTops.map((t) => t + ASIDE).join(', ');
    try {
      for (const name of this.promoted.reverse()) await this.zfs('promote', withSuffix(name, this.oldTops, ASIDE));
      if (reached(this.phase, 'deleted')) await this.deleteNew();
      if (!reached(this.phase, 'deleted')) {
        await this.returnAside();
        await this.local.run(['zfs', 'mount', this.cores], { mutates: true, allowExitCodes: [1] });
        if (this.wasRunning && reached(this.phase, 'stopped'))
          await this.local.run(['vmadm', 'start', this.uuid], { mutates: true });
      } else {
        const vm = await recreateStopped(this.existing, this.uuid, this.oldDatasets, this.local, { copy: false });
        await this.returnAside();
        await finishRestore(this.existing, this.uuid, vm, this.wasRunning, this.local);
      }
      await this.removeStaged();
      return `VM ${this.uuid} was put back as it was${this.wasRunning ? ', running' : ''}; run the restore again once the cause is fixed.`;
    } catch (error) {
      return `Putting it back failed too (${(error as Error).message}): its previous datasets are kept at ${aside}, the received ones at ${this.newTops.map((t) => t + STAGED).join(', ')} (where not renamed yet); nothing was destroyed.`;
    }
  }

  /** The new VM goes through vmadm delete with placeholders in place of the received data, which is then removed by name. */
  private async deleteNew(): Promise<void> {
    const present = await listDatasets(this.local, [...this.newTops, ...this.newTops.map((t) => t + STAGED)]);
    const exists = await this.local.run(['vmadm', 'get', this.uuid], { mutates: false, allowExitCodes: [1] });
    if (exists.exitCode !== 0) return;
    // cores is mounted inside the zone root once finishRestore ran: the root cannot be renamed under it
    await this.local.run(['zfs', 'unmount', this.cores], { mutates: true, allowExitCodes: [1] });
    for (const top of this.newTops) {
      if (present.has(top) && !present.has(top + STAGED)) await this.zfs('rename', top, top + STAGED);
      if (!present.has(top) || !present.has(top + STAGED))
        await this.local.run(placeholder(top, present.get(top)?.type ?? present.get(top + STAGED)?.type), {
          mutates: true,
        });
    }
    await this.local.run(['vmadm', 'delete', this.uuid], { mutates: true });
  }

  /** The VM's own datasets back under their names, over the placeholders (empty, made here). */
  private async returnAside(): Promise<void> {
    const present = await listDatasets(this.local, [...this.oldTops, ...this.oldTops.map((t) => t + ASIDE)]);
    for (const top of this.oldTops) {
      if (!present.has(top + ASIDE)) continue;
      if (present.has(top)) await this.zfs('destroy', top);
      await this.zfs('rename', top + ASIDE, top);
    }
  }

  private async removeStaged(): Promise<void> {
    const staged = this.newTops.map((t) => t + STAGED);
    const present = await listDatasets(this.local, staged);
    for (const d of staged.filter((name) => present.has(name))) await this.zfs('destroy', '-r', d);
  }
}

/** An empty dataset of the kind vmadm delete expects at `name`: a sparse 1 MiB zvol for a volume. */
function placeholder(name: string, type: DatasetState['type'] | undefined): Argv {
  return type === 'volume' ? ['zfs', 'create', '-s', '-V', '1M', name] : ['zfs', 'create', name];
}

/** After the swap: the old copy goes (zonecopy's holds on it released); one that cannot is kept and named. */
async function removeReplaced(local: Host, oldTops: readonly string[], log: Log): Promise<string[]> {
  const kept: string[] = [];
  for (const aside of oldTops.map((t) => t + ASIDE)) {
    try {
      await releaseZonecopyHolds(local, [aside]);
      await local.run(['zfs', 'destroy', '-r', aside], { mutates: true });
    } catch (error) {
      kept.push(aside);
      log.warn(`the VM's previous copy ${aside} was kept: ${(error as Error).message}; remove it with zfs destroy -r`);
    }
  }
  return kept;
}
