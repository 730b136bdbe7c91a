import type { Step, TransferStep } from '../plan/steps.js';

/**
 * A stream whose snapshot added less than this (its `written`) may share one receive session with
 * others: the streams of a run where little changed cost process starts and SSH channels, not bytes.
 */
export const SERIES_STREAM_BYTES = 4 * 1024 * 1024;
const STREAMS_PER_LANE = 8;

/**
 * The transfers among the consecutive transfer steps from `start` that may go in a series, split
 * into lanes (each one series). Each is one incremental stream from the snapshot right before the
 * new one into a target that exists, small, with nothing to roll back first and no other transfer
 * of its dataset (a clone's origin). Lanes of one stream are not worth a series and are left out.
 */
export function seriesLanes(steps: readonly Step[], start: number, maxLanes: number): TransferStep[][] {
  const block: TransferStep[] = [];
  for (let index = start; index < steps.length; index++) {
    const step = steps[index]!;
    if (step.kind === 'transfer') block.push(step);
    else if (step.kind !== 'create-parent') break;
  }
  const transfersOf = (dataset: string) => block.filter((step) => step.vmDataset === dataset).length;
  const fits = (step: TransferStep) =>
    step.added !== undefined &&
    step.added < SERIES_STREAM_BYTES &&
    step.sends.length === 1 &&
    step.common !== undefined &&
    !step.rollback &&
    !step.cloneOrigin &&
    transfersOf(step.vmDataset) === 1;
  const eligible = block.filter(fits);
  const count = Math.min(maxLanes, Math.ceil(eligible.length / STREAMS_PER_LANE));
  const lanes = Array.from({ length: count }, (_, lane) => eligible.filter((_, index) => index % count === lane));
  return lanes.filter((lane) => lane.length > 1);
}
