import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { imgadmGet } from '../smartos/vmadm.js';
import { listDatasets, type SnapshotInfo } from '../zfs/list.js';
import { installImageFromStream } from './image-install.js';
import { RestoreError } from './restore-error.js';
import type { BackupSet, OriginSnapshot, RestoreSource } from './source.js';

/** An image's dataset is named by its UUID (`zones/<uuid>`), so a clone's origin names its image. */
export const UUID_TAIL = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * Every image the set's datasets are clones of must be here with the origin snapshot's guid, or
 * the streams cannot be received from it. Missing images are installed from the source; an image
 * here whose snapshots lack that guid is refused before anything changes. Returns those installed.
 */
export async function ensureImages<S extends BackupSet>(
  set: S,
  source: RestoreSource<S>,
  local: Host,
  log: Log,
): Promise<string[]> {
  const installed: string[] = [];
  for (const origin of uniqueOrigins(set)) {
    const image = UUID_TAIL.exec(origin.dataset)?.[1];
    if (!image) continue;
    const here = await imgadmGet(local, image);
    if (here) {
      const dataset = `${String(here.zpool ?? 'zones')}/${image}`;
      const snapshots = (await listDatasets(local, [dataset])).get(dataset)?.snapshots ?? [];
      const refusal = imageRefusal(image, snapshots, origin, set.vm);
      if (refusal) throw new RestoreError(refusal);
      continue;
    }
    const manifest = set.images.find((i) => i.manifest?.uuid === image)?.manifest;
    const write = source.originWriter(set, origin, local);
    if (!manifest || !write) {
      throw new RestoreError(
        `image ${image} is not installed here and ${source.label} has no ${manifest ? 'stream' : 'manifest'} of it with backup set ${set.snapshot}: import it first (imgadm import ${image}); its @${origin.snapshot} guid must be ${origin.guid}.`,
      );
    }
    log.info(`installing image ${image} from ${source.label}`);
    await installImageFromStream(local, manifest, write).catch((error: Error) => {
      throw new RestoreError(`installing image ${image} from ${source.label} failed: ${error.message}`);
    });
    installed.push(image);
  }
  return installed;
}

/**
 * Why the local image cannot serve as the origin, if it cannot: compared by guid, as a snapshot
 * renamed on one side (the backup host keeps the name it was first sent under) is still the same.
 */
export function imageRefusal(
  image: string,
  snapshots: readonly SnapshotInfo[],
  origin: OriginSnapshot,
  vm: string,
): string | undefined {
  if (snapshots.some((s) => s.guid === origin.guid)) return undefined;
  const named = snapshots.find((s) => s.name === origin.snapshot);
  const has = named
    ? `@${origin.snapshot} guid ${named.guid}`
    : `no @${origin.snapshot} (nor any snapshot of that guid)`;
  return `image ${image} on this host has ${has}, but VM ${vm} was cloned from @${origin.snapshot} guid ${origin.guid}; its datasets cannot be received over this image. Remove the local image (imgadm delete ${image}) if unused so zonecopy installs the backed-up one.`;
}

/** Two disks of one image share their origin: checked and installed once. */
function uniqueOrigins(set: BackupSet): OriginSnapshot[] {
  const origins = set.datasets.flatMap((d) => (d.origin ? [d.origin] : []));
  return [...new Map(origins.map((o) => [`${o.dataset}@${o.guid}`, o])).values()];
}
