import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';
import type { DatasetState } from './list.js';

/** `zfs hold`/`release` take many snapshots in one call; `zfs holds -H` answers for many at once. */

export function holdArgv(tag: string, snapshots: readonly string[]): Argv {
  return ['zfs', 'hold', tag, ...snapshots];
}

export function releaseArgv(tag: string, snapshots: readonly string[]): Argv {
  return ['zfs', 'release', tag, ...snapshots];
}

/**
 * Full names of the snapshots that carry `tag`, among the datasets listed. Only snapshots with
 * holds are asked about, so a host without holds costs no extra command.
 */
export async function snapshotsHeldBy(host: Host, tag: string, datasets: Iterable<DatasetState>): Promise<Set<string>> {
  const held = [...datasets].flatMap((d) => d.snapshots.filter((s) => s.userrefs > 0).map((s) => `${d.name}@${s.name}`));
  const result = new Set<string>();
  if (held.length === 0) return result;
  const out = await host.run(['zfs', 'holds', '-H', ...held], { mutates: false });
  for (const line of out.stdout.split('\n')) {
    const [snapshot, holdTag] = line.split('\t');
    if (snapshot && holdTag === tag) result.add(snapshot);
  }
  return result;
}
