import { CommandError, type Host } from '../host/host.js';
import { kernelName } from '../host/kernel.js';
import type { Argv } from '../host/quote.js';
import { inParts, isMissingDataset, listDatasets, type DatasetState } from './list.js';
import { isWithin, parentOf, splitSnapshot } from './names.js';

/**
 * `zfs hold`/`release` commands for many snapshots. Named one by one, each snapshot costs the pool
 * a sync of its own (4 s for 100 in the test guest); with -r the whole tree is one sync (0.5 s).
 * So snapshots of one name below a dataset whose own snapshot is in the list collapse into
 * `-r dataset@name`, unless one of `keep` (datasets whose holds must stay as they are: a failed
 * transfer's, or a VM dataset with no entry in the list) lies in that tree. -r passes over
 * datasets without the snapshot or without the hold.
 */
export function holdCommands(
  kind: 'hold' | 'release',
  tag: string,
  snapshots: readonly string[],
  keep: readonly string[],
): Argv[] {
  const listed = new Set(snapshots);
  const collapsible = (full: string) => {
    const { dataset } = splitSnapshot(full);
    return !keep.some((k) => isWithin(k, dataset));
  };
  // a snapshot is covered when an ancestor's snapshot of the same name is in the list and collapsible
  const covered = (full: string) => {
    const { dataset, snapshot } = splitSnapshot(full);
    for (let p = parentOf(dataset); p; p = parentOf(p)) {
      if (listed.has(`${p}@${snapshot}`) && collapsible(`${p}@${snapshot}`)) return true;
    }
    return false;
  };
  const below = (s: string, o: string) => {
    const [top, other] = [splitSnapshot(s), splitSnapshot(o)];
    return o !== s && top.snapshot === other.snapshot && isWithin(other.dataset, top.dataset);
  };
  // -r only where it saves a command: the snapshot heads others
  const recursive = snapshots.filter((s) => !covered(s) && collapsible(s) && snapshots.some((o) => below(s, o)));
  const single = snapshots.filter((s) => !covered(s) && !recursive.includes(s));
  return [
    ...(recursive.length > 0 ? [['zfs', kind, '-r', tag, ...recursive]] : []),
    ...(single.length > 0 ? [['zfs', kind, tag, ...single]] : []),
  ];
}

/**
 * illumos's `zfs holds` runs zfs_for_each over every argument once per argument (illumos-gate
 * usr/src/cmd/zfs/zfs_main.c, zfs_do_holds; OpenZFS fixed it), so N names cost N² dataset opens:
 * there it gets batches this small, this many side by side.
 */
export const ILLUMOS_HOLDS_BATCH = 8;
export const ILLUMOS_HOLDS_SIDE_BY_SIDE = 4;

/** The `zfs holds -H` commands for `names` on a host whose `uname -s` is `kernel`. */
export function holdsArgvs(names: readonly string[], kernel: string): Argv[] {
  const parts: string[][] = [];
  if (kernel === 'SunOS') {
    for (let i = 0; i < names.length; i += ILLUMOS_HOLDS_BATCH) parts.push(names.slice(i, i + ILLUMOS_HOLDS_BATCH));
  } else {
    parts.push(...inParts(names));
  }
  return parts.map((part) => ['zfs', 'holds', '-H', ...part]);
}

/**
 * Every hold on the snapshots of the datasets listed. Only snapshots with holds are asked about, so
 * a host without holds costs no extra command; many are asked in a few parts side by side
 * (holdsArgvs, small batches on illumos). A snapshot destroyed since the listing holds nothing.
 */
export async function listHolds(host: Host, datasets: Iterable<DatasetState>): Promise<Hold[]> {
  const held = [...datasets].flatMap((d) =>
    d.snapshots.filter((s) => s.userrefs > 0).map((s) => `${d.name}@${s.name}`),
  );
  return holdsOn(host, held);
}

/** Every hold on this host's snapshots in all pools: one `zfs list` of names and hold counts, then listHolds' way. */
export async function listAllHolds(host: Host): Promise<Hold[]> {
  const argv = ['zfs', 'list', '-H', '-p', '-t', 'snapshot', '-o', 'name,userrefs'];
  const out = await host.run(argv, { mutates: false });
  const held = out.stdout.split('\n').flatMap((line) => {
    const [name, userrefs] = line.split('\t');
    return name && Number(userrefs) > 0 ? [name] : [];
  });
  return holdsOn(host, held);
}

/** The holds on `held` (full snapshot names), in holdsArgvs' batches, a few side by side. */
async function holdsOn(host: Host, held: readonly string[]): Promise<Hold[]> {
  if (held.length === 0) return [];
  const argvs = holdsArgvs(held, await kernelName(host));
  const outputs: string[] = [];
  const next = argvs.entries();
  const worker = async () => {
    for (const [index, argv] of next) {
      const out = await host.run(argv, { mutates: false, allowExitCodes: [1] });
      const unexpected = out.stderr.split('\n').filter((line) => line.trim() && !isMissingDataset(line.trim()));
      if (out.exitCode !== 0 && unexpected.length > 0) throw new CommandError(out);
      outputs[index] = out.stdout;
    }
  };
  await Promise.all(Array.from({ length: Math.min(ILLUMOS_HOLDS_SIDE_BY_SIDE, argvs.length) }, worker));
  return parseHoldLines(outputs.join('\n'));
}

/** Full names of the snapshots that carry `tag`, among the datasets listed (listHolds). */
export async function snapshotsHeldBy(host: Host, tag: string, datasets: Iterable<DatasetState>): Promise<Set<string>> {
  return new Set((await listHolds(host, datasets)).filter((h) => h.tag === tag).map((h) => h.snapshot));
}

/**
 * `zfs holds -H` output: `snapshot<TAB>tag<TAB>date` lines. illumos writes `no datasets
 * available` on stdout when nothing is held; it has no tab, so it names no hold.
 */
export function parseHoldLines(stdout: string): Hold[] {
  return stdout.split('\n').flatMap((line) => {
    const [snapshot, tag] = line.split('\t');
    return snapshot && tag ? [{ snapshot, tag }] : [];
  });
}

/** The snapshots `stdout` says carry `tag`. */
export function parseHolds(stdout: string, tag: string): Set<string> {
  return new Set(
    parseHoldLines(stdout)
      .filter((h) => h.tag === tag)
      .map((h) => h.snapshot),
  );
}

/** Every hold zonecopy places has a tag starting with this (`zonecopy:<backup host>:<group>`). */
export const HOLD_TAG_PREFIX = 'zonecopy:';

export interface Hold {
  snapshot: string;
  tag: string;
}

/**
 * Releases zonecopy's holds (and no one else's) on the snapshots of `datasets` and everything
 * below them, one `zfs release` per tag; returns them. A dry run lists them and prints the commands.
 */
export async function releaseZonecopyHolds(host: Host, datasets: readonly string[]): Promise<Hold[]> {
  const state = await listDatasets(host, datasets, { recursive: true });
  const holds = (await listHolds(host, state.values())).filter((h) => h.tag.startsWith(HOLD_TAG_PREFIX));
  await releaseHolds(host, holds);
  return holds;
}

/** Releases `holds`, one `zfs release TAG snapshot…` per tag (a dry run prints the commands). */
export async function releaseHolds(host: Host, holds: readonly Hold[]): Promise<void> {
  const tags = [...new Set(holds.map((h) => h.tag))];
  for (const tag of tags)
    await host.run(['zfs', 'release', tag, ...holds.filter((h) => h.tag === tag).map((h) => h.snapshot)], {
      mutates: true,
    });
}

/** The tag of the holds a target places: `zonecopy:<target>:<group>`. */
export function targetHoldPrefix(target: string): string {
  return `${HOLD_TAG_PREFIX}${target}:`;
}
