import { describeCommand, mutate, type Host } from '../host/host.js';
import { destroySnapshotsArgv } from '../zfs/commands.js';

/**
 * One side's thinning of one dataset: one `zfs destroy ds@a,b,c`; a dry run prints it and why
 * each other snapshot of the group stays.
 */
export async function destroyThinned(
  host: Host,
  dataset: string,
  thinning: { destroy: readonly string[]; kept: ReadonlyArray<{ name: string; why: string }> },
): Promise<void> {
  const argv = thinning.destroy.length > 0 ? destroySnapshotsArgv(dataset, thinning.destroy) : undefined;
  const lines = [
    ...(argv ? [describeCommand(argv)] : []),
    ...thinning.kept.map((k) => `keeps ${dataset}@${k.name}: ${k.why}`),
  ];
  await mutate(
    host,
    lines,
    async () => {
      if (argv) await host.run(argv, { mutates: true });
    },
    undefined,
  );
}
