import type { Host } from '../host/host.js';
import type { HoldStep } from '../plan/steps.js';
import { holdCommands } from '../zfs/holds.js';
import { splitSnapshot } from '../zfs/names.js';

/**
 * Moves zonecopy's hold on one side (both targets use it): the new hold goes on while the old one
 * comes off (each pays for opening every dataset of the tree, 5 s for 100 received ones in the
 * test guest). The old snapshot is no longer the newest common one once the new one has arrived;
 * should the new hold fail, the old one is held again, so a failed hold leaves the holds as they
 * were. Entries of datasets that `failed` are skipped: their last good common snapshot stays held.
 */
export async function moveHold(
  onSide: readonly HoldStep[],
  host: Host,
  failed: (dataset: string) => boolean,
  errors: string[],
): Promise<void> {
  /** True when every command succeeded (or there was nothing to do). */
  const holdOrRelease = async (step: HoldStep, what: string = step.kind): Promise<boolean> => {
    const snapshots = step.snapshots.filter((e) => !failed(e.dataset)).map((e) => e.snapshot);
    if (snapshots.length === 0) return true;
    const keep = [
      ...step.others,
      ...step.snapshots.filter((e) => failed(e.dataset)).map((e) => splitSnapshot(e.snapshot).dataset),
    ];
    try {
      for (const argv of holdCommands(step.kind, step.tag, snapshots, keep)) await host.run(argv, { mutates: true });
      return true;
    } catch (error) {
      errors.push(`${what} ${step.tag} on ${host.label} failed: ${(error as Error).message}`);
      return false;
    }
  };
  const hold = onSide.find((s) => s.kind === 'hold');
  const release = onSide.find((s) => s.kind === 'release');
  const [held, released] = await Promise.all([
    hold ? holdOrRelease(hold) : true,
    release ? holdOrRelease(release) : false,
  ]);
  if (!held && release && released)
    await holdOrRelease({ ...release, kind: 'hold' }, 'hold (of the previous snapshots again)');
}
