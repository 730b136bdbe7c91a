import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Host } from '../host/host.js';
import { pipelineText, type Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import { measureFile } from '../restore/image-install.js';
import type { ListedSet } from '../restore/list-sets.js';
import { RestoreError } from '../restore/restore-error.js';
import type {
  BackupSet,
  OriginSnapshot,
  OriginWriter,
  ReceiveInto,
  Received,
  RestoreSource,
  SetDataset,
} from '../restore/source.js';
import type { VmSpec } from '../smartos/vmadm.js';
import { consistencyText } from '../status/consistency.js';
import { chainOf, readCatalog, type VmCatalog } from './catalog.js';
import type { GpgSettings } from './gpg.js';
import type { SetManifest, StoredStream } from './keys.js';
import type { S3Settings } from './settings.js';
import type { ObjectStore } from './store.js';
import { decompressArgv, decryptArgv } from './streams.js';
import { verifyStream } from './verify.js';

/** A set in the bucket: each dataset's chain of stream objects, oldest first, and the catalog it came from. */
interface StoredSet extends BackupSet {
  catalog: VmCatalog;
  chains: ReadonlyMap<string, StoredStream[]>;
}

/**
 * Backups in an object store: one object per snapshot stream (compressed, maybe encrypted) and a
 * manifest per set. A dataset comes back as its chain of objects received in order, each checked
 * against the sha256 recorded when it was stored, before anything here changes and again on the way.
 */
export class ObjectStoreSource implements RestoreSource<StoredSet> {
  readonly sendsClonesWhole = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly s3: S3Settings,
    private readonly log: Log,
  ) {}

  get label(): string {
    return this.store.label;
  }

  async listSets(uuid: string): Promise<ListedSet[]> {
    const catalog = await readCatalog(this.store, this.s3.prefix, uuid);
    return completeSets(catalog).map((set) => ({
      snapshot: set.snapshot,
      consistency: consistencyText(set.consistency),
      ...(Number.isFinite(Date.parse(set.createdAt)) ? { created: Date.parse(set.createdAt) / 1000 } : {}),
      ...(set.consistency ? { record: set.consistency } : {}),
    }));
  }

  async readSet(uuid: string, wanted?: string): Promise<StoredSet> {
    const catalog = await readCatalog(this.store, this.s3.prefix, uuid);
    const set = pickSet(catalog, wanted);
    const chains = new Map<string, StoredStream[]>();
    const datasets: SetDataset[] = set.datasets.map((dataset) => {
      const head = [...catalog.streams.values()].find((s) => s.dataset === dataset && s.snapshot === set.snapshot)!;
      const { chain, origin } = chainOf(catalog, head);
      chains.set(dataset, chain);
      const history = chain.map((stream) => ({ name: stream.snapshot, guid: stream.guid }));
      return { source: dataset, backup: chain[chain.length - 1]!.key, ...(origin ? { origin } : {}), history };
    });
    return {
      vm: uuid,
      snapshot: set.snapshot,
      spec: JSON.parse(set.spec) as VmSpec,
      images: set.images,
      datasets,
      catalog,
      chains,
    };
  }

  async verify(set: StoredSet, options: { readStreams: boolean }): Promise<void> {
    const origins = set.datasets.flatMap((d) => (d.origin ? (originStream(set.catalog, d.origin) ?? []) : []));
    const needed = [...new Set([...[...set.chains.values()].flat(), ...origins])];
    for (const stream of needed) {
      const bad = options.readStreams ? await verifyStream(this.store, stream) : await this.checkPresent(stream);
      if (bad)
        throw new RestoreError(
          `refusing to restore backup set ${set.snapshot}: ${bad}. Restore an older set (--snapshot) or run \`zonecopy status --target s3 --verify\``,
        );
    }
  }

  /** Without reading it: the object is there with the size recorded when it was stored. */
  private async checkPresent(stream: StoredStream): Promise<string | undefined> {
    const head = await this.store.head(stream.key);
    if (!head) return `${stream.key}: not in the bucket`;
    if (stream.bytes !== undefined && head.size !== stream.bytes)
      return `${stream.key}: ${head.size} bytes stored, ${stream.bytes} recorded`;
    return undefined;
  }

  describeReceive(set: StoredSet, dataset: SetDataset, into: ReceiveInto): string[] {
    return streamsFor(set, dataset, into).map(
      (stream, i) => `${this.label}: get ${stream.key} | ${pipelineText(this.unpack(stream, into.argv(i === 0)))}`,
    );
  }

  async estimate(set: StoredSet, dataset: SetDataset, into: ReceiveInto): Promise<number> {
    return streamsFor(set, dataset, into).reduce((sum, stream) => sum + (stream.bytes ?? 0), 0);
  }

  async receive(set: StoredSet, dataset: SetDataset, into: ReceiveInto, local: Host): Promise<Received> {
    const chain = streamsFor(set, dataset, into);
    let bytes = 0;
    const started = Date.now();
    for (const [i, stream] of chain.entries()) {
      const receive = into.argv(i === 0);
      this.log.verbose(`${stream.key} -> ${receive.join(' ')}`);
      bytes += await receiveObject(this.store, stream, receive, local, this.s3);
    }
    return {
      mode: into.base || dataset.origin || chain.length > 1 ? 'incremental' : 'full',
      bytes,
      seconds: (Date.now() - started) / 1000,
    };
  }

  originWriter(set: StoredSet, origin: OriginSnapshot, local: Host): OriginWriter | undefined {
    const stream = originStream(set.catalog, origin);
    if (!stream) return undefined;
    const sink = (file: string): Argv => ['sh', '-c', 'cat > "$1"', 'sh', file];
    return {
      describe: (file) => `${this.label}: get ${stream.key} | ${pipelineText(this.unpack(stream, sink(file)))}`,
      write: async (file) => {
        await receiveObject(this.store, stream, sink(file), local, this.s3);
        // decrypted and decompressed on the way, so the bytes written never passed through here
        return measureFile(local, file);
      },
    };
  }

  /** The local pipeline a stored stream goes through: decrypted, decompressed, into `sink`. */
  private unpack(stream: StoredStream, sink: Argv): Argv[] {
    return unpackPipeline(stream, sink, this.s3);
  }
}

/** The stream objects a receive needs: the whole chain, or what follows the snapshot the host still has. */
function streamsFor(set: StoredSet, dataset: SetDataset, into: ReceiveInto): StoredStream[] {
  const chain = set.chains.get(dataset.source)!;
  if (!into.base) return chain;
  return chain.slice(chain.findIndex((stream) => stream.guid === into.base!.guid) + 1);
}

/** Sets whose every dataset has its stream with an unbroken chain, newest first. */
export function completeSets(catalog: VmCatalog): SetManifest[] {
  const complete = (set: SetManifest) =>
    set.datasets.every((d) => {
      const head = [...catalog.streams.values()].find((s) => s.dataset === d && s.snapshot === set.snapshot);
      return head !== undefined && !chainOf(catalog, head).missing;
    });
  return [...catalog.sets].reverse().filter(complete);
}

/** The newest complete set, or the one asked for. */
function pickSet(catalog: VmCatalog, wanted?: string): SetManifest {
  const sets = completeSets(catalog);
  if (wanted !== undefined) {
    const set = sets.find((s) => s.snapshot === wanted);
    if (!set)
      throw new RestoreError(
        `VM ${catalog.vm}: no complete backup set ${wanted} in the bucket; complete sets: ${sets.map((s) => s.snapshot).join(', ') || 'none'}`,
      );
    return set;
  }
  if (sets.length === 0)
    throw new RestoreError(
      `VM ${catalog.vm}: no complete backup set in the bucket (${catalog.sets.length} set manifest(s), ${catalog.streams.size} stream(s))`,
    );
  return sets[0]!;
}

/** A clone's origin stored in full, as the backup stored it beside the clone. */
function originStream(catalog: VmCatalog, origin: NonNullable<StoredStream['parent']>): StoredStream | undefined {
  return [...catalog.streams.values()].find((s) => s.dataset === origin.dataset && s.guid === origin.guid && !s.parent);
}

/** Downloads one stream object through decryption and decompression into `sink`; its sha256 must match. */
async function receiveObject(
  store: ObjectStore,
  stream: StoredStream,
  sink: Argv,
  local: Host,
  gpg: GpgSettings,
): Promise<number> {
  const process = local.spawn(unpackPipeline(stream, sink, gpg));
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const flow = pipeline(await store.get(stream.key), counter, process.stdin).then(
    () => undefined,
    (error: Error) => error,
  );
  const done = await process.done;
  const broken = await flow;
  if (done.exitCode !== 0)
    throw new RestoreError(
      `${done.command} on ${done.host} exited ${done.exitCode} receiving ${stream.key}: ${done.stderr.trim().split('\n').slice(-3).join(' / ')}`,
    );
  if (broken) throw new RestoreError(`download of ${stream.key} failed: ${broken.message}`);
  if (stream.sha256 && hash.digest('hex') !== stream.sha256)
    throw new RestoreError(`${stream.key} changed while it was restored (sha256 mismatch)`);
  return bytes;
}

function unpackPipeline(stream: StoredStream, sink: Argv, gpg: GpgSettings): Argv[] {
  return [...decryptArgv(stream.encrypted, gpg), ...decompressArgv(stream.compression), sink];
}
