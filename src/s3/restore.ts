import { createHash, randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { Log } from '../log.js';
import {
  finishRestore,
  guidOf,
  makeRoom,
  recreateStopped,
  RestoreError,
  type RestoredDataset,
  type RestoreRequest,
  type RestoreResult,
} from '../restore/restore-vm.js';
import { nicChanges } from '../restore/create-payload.js';
import { installImageFromStream, measureFile } from '../restore/image-install.js';
import { delegatedRole, receiveArgv } from '../restore/received-properties.js';
import { imgadmGet, type VmSpec } from '../smartos/vmadm.js';
import { chainOf, readCatalog, type VmCatalog } from './catalog.js';
import type { SetManifest, StoredStream } from './keys.js';
import type { S3Settings } from './settings.js';
import type { ObjectStore } from './store.js';
import type { GpgSettings } from './gpg.js';
import { decompressArgv, decryptArgv } from './streams.js';
import { verifyStream } from './verify.js';

interface Context {
  local: Host;
  store: ObjectStore;
  s3: S3Settings;
  log: Log;
}

const UUID_TAIL = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * Restores a VM from the bucket through the same steps as from a backup host: pick a complete set,
 * verify every stream it needs against its sha256 before touching anything, install missing images
 * from their stored streams, recreate the VM stopped, receive each dataset's chain in order.
 */
export async function restoreVmFromS3(options: RestoreRequest, context: Context): Promise<RestoreResult> {
  const { local, store, log } = context;
  const catalog = await readCatalog(store, context.s3.prefix, options.uuid);
  const set = pickSet(catalog, options.snapshot);
  const spec = JSON.parse(set.spec) as VmSpec;
  const chains = set.datasets.map((dataset) => {
    const head = [...catalog.streams.values()].find((s) => s.dataset === dataset && s.snapshot === set.snapshot)!;
    return { dataset, ...chainOf(catalog, head) };
  });
  const origins = uniqueOrigins(chains.flatMap((c) => (c.origin ? [c.origin] : [])));
  log.info(
    `restoring VM ${options.uuid} (${spec.alias ?? spec.brand}) from ${store.label}, backup set ${set.snapshot}`,
  );

  const needed = [...chains.flatMap((c) => c.chain), ...origins.flatMap((o) => originStream(catalog, o) ?? [])];
  for (const stream of needed) {
    const bad = await verifyStream(store, stream);
    if (bad)
      throw new RestoreError(
        `refusing to restore backup set ${set.snapshot}: ${bad}. Restore an older set (--snapshot) or run \`zonecopy status --target s3 --verify\``,
      );
  }

  const uuid = options.newUuid ? randomUUID() : options.uuid;
  await makeRoom(uuid, options.force, local);
  const imagesInstalled = await ensureImages(set, origins, catalog, context);
  const vm = await recreateStopped(spec, uuid, set.datasets, local, { copy: options.newUuid });
  const nics = options.newUuid
    ? { nics: nicChanges((spec.nics as Array<Record<string, unknown>> | undefined) ?? [], vm?.nics) }
    : {};
  if (!vm) return { uuid, snapshot: set.snapshot, datasets: [], imagesInstalled, started: false, ...nics };
  const datasets: RestoredDataset[] = [];
  for (const { source, into } of vm.pairs) {
    const { chain, origin } = chains.find((c) => c.dataset === source)!;
    const localOrigin = vm.localState.get(into)?.origin;
    if (origin && (!localOrigin || (await guidOf(local, localOrigin)) !== origin.guid)) {
      throw new RestoreError(
        `${source} was backed up as a clone of ${origin.dataset}@${origin.snapshot} (guid ${origin.guid}), but the recreated ${into} is ${localOrigin ? `a clone of ${localOrigin} with another guid` : 'not a clone'}`,
      );
    }
    let bytes = 0;
    const started = Date.now();
    for (const [i, stream] of chain.entries()) {
      const role = delegatedRole(source, spec.datasets ?? []);
      const receive = receiveArgv(into, {
        origin: i === 0 && origin ? localOrigin : undefined,
        role: i === 0 || !role ? role : 'below-delegated',
      });
      log.verbose(`${stream.key} -> ${receive.join(' ')}`);
      bytes += await receiveObject(store, stream, receive, local, context.s3);
    }
    datasets.push({
      source,
      backup: chain[chain.length - 1]!.key,
      local: into,
      mode: origin || chain.length > 1 ? 'incremental' : 'full',
      bytes,
      seconds: (Date.now() - started) / 1000,
    });
  }
  await finishRestore(spec, uuid, vm, options.start, local);
  return { uuid, snapshot: set.snapshot, datasets, imagesInstalled, started: options.start, ...nics };
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

function uniqueOrigins(
  origins: Array<NonNullable<StoredStream['parent']>>,
): Array<NonNullable<StoredStream['parent']>> {
  return [...new Map(origins.map((o) => [`${o.dataset}@${o.guid}`, o])).values()];
}

function originStream(catalog: VmCatalog, origin: NonNullable<StoredStream['parent']>): StoredStream | undefined {
  return [...catalog.streams.values()].find((s) => s.dataset === origin.dataset && s.guid === origin.guid && !s.parent);
}

/** Each image the VM was cloned from must be here with the same @final guid; missing ones are installed from their stored stream. */
async function ensureImages(
  set: SetManifest,
  origins: Array<NonNullable<StoredStream['parent']>>,
  catalog: VmCatalog,
  context: Context,
): Promise<string[]> {
  const { local, store, log } = context;
  const installed: string[] = [];
  for (const origin of origins) {
    const image = UUID_TAIL.exec(origin.dataset)?.[1];
    if (!image) continue;
    const here = await imgadmGet(local, image);
    if (here) {
      const localGuid = await guidOf(local, `${String(here.zpool ?? 'zones')}/${image}@${origin.snapshot}`);
      if (localGuid !== origin.guid) {
        throw new RestoreError(
          `image ${image} on this host has @${origin.snapshot} guid ${localGuid}, but VM ${set.vm} was cloned from guid ${origin.guid}. Remove the local image (imgadm delete ${image}) if unused so zonecopy installs the stored one.`,
        );
      }
      continue;
    }
    const manifest = set.images.map((i) => i.manifest as { uuid?: string } | undefined).find((m) => m?.uuid === image);
    const stream = originStream(catalog, origin);
    if (!manifest || !stream) {
      throw new RestoreError(
        `image ${image} is not installed here and the bucket has no ${manifest ? 'stream' : 'manifest'} of it: import it first (imgadm import ${image}); its @${origin.snapshot} guid must be ${origin.guid}.`,
      );
    }
    log.info(`installing image ${image} from ${store.label}`);
    await installImageFromStream(local, image, manifest as Record<string, unknown>, async (file) => {
      await receiveObject(store, stream, ['sh', '-c', 'cat > "$1"', 'sh', file], local, context.s3);
      // decrypted and decompressed on the way, so the bytes written never passed through here
      return measureFile(local, file);
    }).catch((error: Error) => {
      throw new RestoreError(`installing image ${image} from ${store.label} failed: ${error.message}`);
    });
    installed.push(image);
  }
  return installed;
}

/** Downloads one stream object through decryption and decompression into `sink`; its sha256 must match. */
async function receiveObject(
  store: ObjectStore,
  stream: StoredStream,
  sink: Argv,
  local: Host,
  gpg: GpgSettings,
): Promise<number> {
  const process = local.spawn([...decryptArgv(stream.encrypted, gpg), ...decompressArgv(stream.compression), sink]);
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
