import { parseSendEstimate } from '../zfs/commands.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { discoverDatasets } from '../smartos/discovery.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { consistencyText, readStoredConsistency } from '../status/consistency.js';
import { commandLine, shellQuote } from '../host/quote.js';
import { pump } from '../transfer/pump.js';
import { guidOf } from '../zfs/guid.js';
import { receivedRaw } from '../zfs/encryption.js';
import { datasetsWithin, listDatasets, type DatasetState, type SnapshotInfo } from '../zfs/list.js';
import { isWithin, splitSnapshot, targetDatasetName } from '../zfs/names.js';
import { completeBackupSets, pickBackupSet } from './backup-sets.js';
import { ImageFileMeter } from './image-install.js';
import type { ListedSet } from './list-sets.js';
import { RestoreError } from './restore-error.js';
import type {
  BackupSet,
  OriginSnapshot,
  OriginWriter,
  ReceiveInto,
  Received,
  RestoreSource,
  SetDataset,
  SnapshotRef,
  StoredImage,
} from './source.js';

/**
 * Backups on a ZFS backup host: each dataset under `basePath`, the VM spec of each set (and its
 * images' manifests) as files under `specDirectory/<uuid>/`. Only read, over the one SSH connection.
 */
export class BackupHostSource implements RestoreSource {
  readonly sendsClonesWhole = true;

  constructor(
    private readonly remote: Host,
    private readonly paths: { basePath: string; specDirectory: string },
    private readonly log: Log,
  ) {}

  get label(): string {
    return this.remote.label;
  }

  async listSets(uuid: string): Promise<ListedSet[]> {
    const specNames = await this.specNames(uuid, { noneIsError: false });
    if (specNames.length === 0) return [];
    const targets = this.targetsOf(await this.readSpec(uuid, specNames[specNames.length - 1]!));
    const state = await listDatasets(this.remote, targets);
    const sets = completeBackupSets(specNames, targets, state);
    // the root's snapshot was taken at the same instant as the others' (one atomic zfs snapshot)
    const creation = new Map(state.get(targets[0]!)?.snapshots.map((s) => [s.name, s.creation]));
    const listed: ListedSet[] = [];
    // one after the other: each is a channel of the one SSH connection (sshd's MaxSessions)
    for (const snapshot of sets) {
      const record = await readStoredConsistency(this.remote, this.directory(uuid), snapshot);
      const created = creation.get(snapshot);
      listed.push({
        snapshot,
        consistency: consistencyText(record),
        ...(created ? { created } : {}),
        ...(record ? { record } : {}),
      });
    }
    return listed;
  }

  async readSet(uuid: string, wanted?: string): Promise<BackupSet> {
    const specNames = await this.specNames(uuid, { noneIsError: true });
    let targets = this.targetsOf(await this.readSpec(uuid, specNames[specNames.length - 1]!));
    let state = await listDatasets(this.remote, targets, { recursive: true });
    const chosen = pickBackupSet(specNames, targets, state, wanted);
    if ('error' in chosen) throw new RestoreError(`VM ${uuid}: ${chosen.error}`);
    const { snapshot } = chosen;
    const spec = await this.readSpec(uuid, snapshot);
    const sources = discoverDatasets(spec).datasets;
    // the set's own spec may name other datasets than the newest one (a disk added since)
    const chosenTargets = this.targetsOf(spec);
    if (chosenTargets.join() !== targets.join()) {
      targets = chosenTargets;
      state = await listDatasets(this.remote, targets, { recursive: true });
    }
    // children made inside the zone (below its delegated dataset, say) come along, under their parents
    const below = datasetsWithin(state, targets).filter(
      (d) => !targets.includes(d) && state.get(d)!.snapshots.some((s) => s.name === snapshot),
    );
    const pairs = [
      ...sources.map((source, i) => ({ source, backup: targets[i]! })),
      ...below.map((backup) => {
        const i = targets.findIndex((t) => isWithin(backup, t));
        return { source: sources[i]! + backup.slice(targets[i]!.length), backup };
      }),
    ];
    const datasets: SetDataset[] = [];
    const guids = new Map<string, string>();
    for (const pair of pairs) {
      const listed = state.get(pair.backup);
      const raw = receivedRaw(listed, this.paths.basePath);
      datasets.push({
        ...pair,
        ...(await this.originOf(listed, guids)),
        ...(raw ? { raw } : {}),
        history: historyUpTo(listed?.snapshots ?? [], snapshot),
      });
    }
    return { vm: uuid, snapshot, spec, images: await this.readImages(uuid, snapshot), datasets };
  }

  /** Nothing to check ahead: `zfs send` reads what ZFS checksums, and origins are compared by guid. */
  async verify(): Promise<void> {}

  async receive(set: BackupSet, dataset: SetDataset, into: ReceiveInto, local: Host): Promise<Received> {
    const { send, from, head } = this.sendOf(set, dataset, into);
    const receive = into.argv(true);
    this.log.verbose(`${send.join(' ')} -> ${receive.join(' ')}`);
    const stream = this.remote.spawn([send]);
    stream.stdin.end();
    const moved = await pump(stream, local.spawn([receive]), `restore of ${head} into ${into.name}`);
    return { mode: from ? 'incremental' : 'full', ...moved };
  }

  async estimate(set: BackupSet, dataset: SetDataset, into: ReceiveInto): Promise<number> {
    const { send } = this.sendOf(set, dataset, into);
    const dry = await this.remote.run([send[0]!, send[1]!, '-nP', ...send.slice(2)], { mutates: false });
    return streamSize(dry.stdout + dry.stderr);
  }

  describeReceive(set: BackupSet, dataset: SetDataset, into: ReceiveInto): string[] {
    const { send } = this.sendOf(set, dataset, into);
    return [`${this.label}: ${commandLine(send)} | ${commandLine(into.argv(true))}`];
  }

  originWriter(_set: BackupSet, origin: OriginSnapshot, local: Host): OriginWriter {
    const send = ['zfs', 'send', `${origin.dataset}@${origin.snapshot}`];
    return {
      describe: (file) => `${this.label}: ${commandLine(send)} > ${shellQuote(file)}`,
      write: async (file) => {
        const meter = new ImageFileMeter();
        const stream = this.remote.spawn([send]);
        stream.stdin.end();
        const sink = local.spawn([['sh', '-c', 'cat > "$1"', 'sh', file]]);
        await pump(stream, sink, `copy of image ${origin.dataset}@${origin.snapshot}`, meter.observe);
        return meter.result();
      },
    };
  }

  /** The one `zfs send` of a dataset: whole, or from the snapshot the host still has, or from the origin the recreated clone has. */
  private sendOf(set: BackupSet, dataset: SetDataset, into: ReceiveInto) {
    const head = `${dataset.backup}@${set.snapshot}`;
    const from = into.base
      ? { dataset: dataset.backup, snapshot: into.base.name }
      : into.fromOrigin
        ? dataset.origin
        : undefined;
    const raw = dataset.raw ? ['-w'] : [];
    const send = from
      ? ['zfs', 'send', ...raw, '-i', `${from.dataset}@${from.snapshot}`, head]
      : ['zfs', 'send', ...raw, head];
    return { send, from, head };
  }

  private directory(uuid: string): string {
    return `${this.paths.specDirectory}/${uuid}`;
  }

  private targetsOf(spec: VmSpec): string[] {
    return discoverDatasets(spec).datasets.map((d) => targetDatasetName(this.paths.basePath, d));
  }

  /** The snapshot names a VM spec is stored for, oldest first as `ls` sorts them. */
  private async specNames(uuid: string, options: { noneIsError: boolean }): Promise<string[]> {
    const directory = this.directory(uuid);
    const listing = await this.remote.run(['ls', '-1', directory], { mutates: false, allowExitCodes: [1, 2] });
    if (listing.exitCode !== 0)
      throw new RestoreError(`no backups of VM ${uuid} on ${this.label}: ${directory} does not exist`);
    const names = listing.stdout
      .split('\n')
      .filter((f) => f.endsWith('.json') && !f.endsWith('.images.json'))
      .map((f) => f.slice(0, -'.json'.length));
    if (names.length === 0 && options.noneIsError)
      throw new RestoreError(`no VM specs in ${directory} on ${this.label}`);
    return names;
  }

  private async readSpec(uuid: string, snapshot: string): Promise<VmSpec> {
    const file = `${this.directory(uuid)}/${snapshot}.json`;
    return JSON.parse((await this.remote.run(['cat', file], { mutates: false })).stdout) as VmSpec;
  }

  /** The manifests stored beside the spec; a set stored without them (or unreadable) has none. */
  private async readImages(uuid: string, snapshot: string): Promise<StoredImage[]> {
    const file = `${this.directory(uuid)}/${snapshot}.images.json`;
    const out = await this.remote.run(['cat', file], { mutates: false, allowExitCodes: [1] });
    if (out.exitCode !== 0) return [];
    try {
      return JSON.parse(out.stdout) as StoredImage[];
    } catch {
      return [];
    }
  }

  /** A backed-up clone's origin on the backup host, with the guid it has there (asked once per origin). */
  private async originOf(
    state: DatasetState | undefined,
    guids: Map<string, string>,
  ): Promise<{ origin?: OriginSnapshot }> {
    if (!state?.origin) return {};
    if (!guids.has(state.origin)) guids.set(state.origin, await guidOf(this.remote, state.origin));
    return { origin: { ...splitSnapshot(state.origin), guid: guids.get(state.origin)! } };
  }
}

/** The snapshots of a backed-up dataset up to and including `snapshot`, oldest first, by name and guid. */
export function historyUpTo(snapshots: readonly SnapshotInfo[], snapshot: string): SnapshotRef[] {
  const end = snapshots.findIndex((s) => s.name === snapshot);
  return snapshots.slice(0, end + 1).map(({ name, guid }) => ({ name, guid }));
}

/** The `size` line of `zfs send -nP` (0 when it printed none). */
export function streamSize(output: string): number {
  return parseSendEstimate(output) ?? 0;
}
