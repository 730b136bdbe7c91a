import { HostStats, type Host } from '../../src/host/host.js';
import type { TransferStep } from '../../src/plan/steps.js';

/** A no-change incremental of `name` into an existing target, as the planner makes it. */
export const incrementalStep = (name: string, extra: Partial<TransferStep> = {}): TransferStep => ({
  kind: 'transfer',
  vmDataset: `zones/${name}`,
  source: `zones/${name}`,
  target: `b/${name}`,
  mode: 'incremental',
  sends: [{ from: `zones/${name}@a`, to: `zones/${name}@b` }],
  carriesImage: false,
  common: `b/${name}@a`,
  added: 0,
  ...extra,
});

/** A host whose commands all succeed, printing what `stdout` gives for them (nothing by default), and that starts no stream. */
export const quietHost = (label: string, stdout: (argv: readonly string[]) => string = () => ''): Host => ({
  label,
  dryRun: false,
  stats: new HostStats(),
  skipped() {},
  close: async () => {},
  run: async (argv) => ({ host: label, command: argv.join(' '), stdout: stdout(argv), stderr: '', exitCode: 0 }),
  spawn: () => {
    throw new Error('no streams here');
  },
});
