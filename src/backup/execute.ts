import { describeCommand, mutate, type Host } from '../host/host.js';
import type { Log } from '../log.js';
import type { HoldStep, ResumeStep, Step, TransferStep } from '../plan/steps.js';
import { emptyTally, type DatasetTally } from '../target/target.js';
import { emptyRecord, type ConsistencyRecord } from './hook-run.js';
import {
  abortReceiveArgv,
  createParentArgv,
  parseSendEstimate,
  receiveArgv,
  resumeSendArgv,
  sendArgv,
} from '../zfs/commands.js';
import { SMALL_STREAM_BYTES } from '../transfer/ssh.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import { isWithin, splitSnapshot } from '../zfs/names.js';
import { humanBytes } from '../report/render.js';
import { resumableBytes, resumeTokenOf } from './resume.js';
import { moveHold } from './hold-move.js';
import { seriesLanes } from './series.js';
import { destroyThinned } from './thin.js';
import type { Tuning } from '../transfer/tuning.js';
import { inStream } from '../transfer/progress.js';

export interface ExecutionContext {
  local: Host;
  remote: Host;
  strategy: TransferStrategy;
  log: Log;
  /** How many transfers run at once (transfer/tuning.ts); one at a time when absent. */
  tuning?: Tuning;
  /** Filled with what the hooks did and how consistent the snapshot is; stored with the spec. */
  consistency?: ConsistencyRecord;
  /** Names the streams in flight (transfer/progress.ts): the VM and the configured target's name. */
  streams?: { uuid?: string; target: string };
}

export interface Execution {
  tallies: Map<string, DatasetTally>;
  /** Errors not tied to one dataset's transfer (rotation, spec upload). */
  errors: string[];
}

/**
 * Runs the plan in order. A failed resume or transfer marks its dataset failed, so its later
 * steps (its transfer after a resume, the clone after its origin, its rotation) are skipped
 * while other datasets continue.
 */
export async function executePlan(steps: readonly Step[], context: ExecutionContext): Promise<Execution> {
  const tallies = new Map<string, DatasetTally>();
  const errors: string[] = [];
  const tally = (dataset: string) => {
    let o = tallies.get(dataset);
    if (!o) tallies.set(dataset, (o = emptyTally()));
    return o;
  };
  const tuned = context.tuning ?? { transfers: 1, streams: 1, seriesLanes: 1 };
  const transfers = new TransferPool(tuned.transfers, tuned.streams);
  /** Targets whose transfer failed, with why: a clone of one of them is not sent. */
  const failedTargets = new Map<string, string>();
  const inSeries = new Set<Step>();
  const consistency = context.consistency ?? emptyRecord();
  const transferring = (step: Step | undefined) => step?.kind === 'transfer' || step?.kind === 'create-parent';
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index]!;
    if (!transferring(step)) await transfers.drain();
    else if (!transferring(steps[index - 1]) && context.strategy.transferSeries) {
      for (const lane of seriesLanes(steps, index, tuned.seriesLanes)) {
        lane.forEach((s) => inSeries.add(s));
        await transfers.start(lane, true, () => runSeries(lane, tally, context));
      }
    }
    switch (step.kind) {
      case 'resume': {
        const o = tally(step.source);
        try {
          const moved = await resume(step, context);
          o.bytes += moved.bytes;
          o.seconds += moved.seconds;
          o.mode = 'resumed';
        } catch (error) {
          o.error = await abortFailedResume(step, (error as Error).message, context);
          failedTargets.set(step.target, o.error);
        }
        break;
      }
      case 'abort-resume':
        try {
          await context.remote.run(abortReceiveArgv(step.target), { mutates: true });
        } catch (error) {
          const o = tally(step.source);
          o.error = `the interrupted receive into ${step.target} could not be aborted: ${(error as Error).message}`;
          failedTargets.set(step.target, o.error);
        }
        break;
      case 'create-parent':
        try {
          await context.remote.run(createParentArgv(step.dataset), { mutates: true });
        } catch (error) {
          errors.push(`cannot create ${step.dataset} on the backup host: ${(error as Error).message}`);
        }
        break;
      case 'transfer': {
        if (inSeries.has(step)) break;
        const o = tally(sourceOf(step));
        const small = step.added !== undefined && step.added < SMALL_STREAM_BYTES;
        await transfers.start(step, small, async () => {
          // its interrupted receive could not be finished: that already failed it
          if (o.error) return;
          const origin = step.cloneOrigin ? failedTargets.get(splitSnapshot(step.cloneOrigin).dataset) : undefined;
          if (origin) {
            o.error = `not sent: its origin ${step.cloneOrigin} did not arrive (${origin})`;
            return;
          }
          try {
            await runTransfer(step, o, context);
          } catch (error) {
            o.error = await withPartialReceive(step, o, (error as Error).message, context);
            failedTargets.set(step.target, o.error);
          }
        });
        break;
      }
      case 'protect': {
        const targets = step.targets.filter((t) => !tally(t.dataset).error);
        for (const [type, properties] of [
          ['filesystem', ['readonly=on', 'canmount=noauto']],
          ['volume', ['readonly=on']],
        ] as const) {
          const names = targets.filter((t) => t.type === type).map((t) => t.target);
          if (names.length === 0) continue;
          try {
            await context.remote.run(['zfs', 'set', ...properties, ...names], { mutates: true });
          } catch (error) {
            errors.push(
              `making the received datasets read-only on ${context.remote.label} failed: ${(error as Error).message}`,
            );
          }
        }
        break;
      }
      case 'hold':
      case 'release': {
        // the planner puts every hold and release step together: both sides at once
        const group: HoldStep[] = [step];
        while (steps[index + 1]?.kind === 'hold' || steps[index + 1]?.kind === 'release')
          group.push(steps[++index] as HoldStep);
        const failed = (dataset: string) => Boolean(tally(dataset).error);
        await Promise.all(
          (['local', 'remote'] as const).map((side) =>
            moveHold(
              group.filter((s) => s.side === side),
              side === 'local' ? context.local : context.remote,
              failed,
              errors,
            ),
          ),
        );
        break;
      }
      case 'rotate': {
        const o = tally(step.dataset);
        if (o.error) break;
        try {
          await destroyThinned(context.remote, step.on, step);
          o.rotatedRemote.push(...step.destroy.map((s) => `${step.on}@${s}`));
        } catch (error) {
          errors.push(`rotation on ${context.remote.label} failed for ${step.on}: ${(error as Error).message}`);
        }
        break;
      }
      case 'store-spec':
        try {
          const record = step.consistencyFile
            ? [{ name: step.consistencyFile, content: `${JSON.stringify(consistency, null, 2)}\n` }]
            : [];
          // one channel per file, side by side over the one connection
          await Promise.all(
            [...step.files, ...record].map((file) =>
              context.remote.run(
                [
                  'sh',
                  '-c',
                  'mkdir -p "$1" && cat > "$1/$2.tmp" && mv "$1/$2.tmp" "$1/$2"',
                  'sh',
                  step.directory,
                  file.name,
                ],
                {
                  mutates: true,
                  input: file.content,
                },
              ),
            ),
          );
        } catch (error) {
          errors.push(
            `storing the VM spec in ${step.directory} on the backup host failed: ${(error as Error).message}`,
          );
        }
        break;
    }
  }
  await transfers.drain();
  return { tallies, errors };
}

/**
 * Runs transfers side by side, at most `limit` large ones and `smallLimit` in all, but never
 * before what a transfer builds on: an earlier transfer of the same VM dataset, the transfer of
 * its origin (however many clones share it: two disks of one image), or, for a target that does
 * not exist yet, of a dataset above it (a new child is received under its parent). An
 * incremental stream into a target that exists waits for nothing.
 */
export class TransferPool {
  private readonly started: Array<{ step: TransferStep; done: Promise<void> }> = [];
  private running = 0;
  private runningLarge = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly smallLimit: number = limit,
  ) {}

  /** `steps`: one transfer, or a series run as one. */
  async start(steps: TransferStep | readonly TransferStep[], small: boolean, work: () => Promise<void>): Promise<void> {
    const group = 'kind' in steps ? [steps] : steps;
    const waitsFor = (step: TransferStep, earlier: TransferStep) =>
      earlier.vmDataset === step.vmDataset ||
      (step.common === undefined && isWithin(step.target, earlier.target)) ||
      (step.cloneOrigin !== undefined && splitSnapshot(step.cloneOrigin).dataset === earlier.target);
    const after = this.started.filter((s) => group.some((step) => waitsFor(step, s.step))).map((s) => s.done);
    const done = (async () => {
      await Promise.all(after);
      await this.slot(small);
      try {
        await work();
      } finally {
        this.running -= 1;
        if (!small) this.runningLarge -= 1;
        // every waiter checks again: a freed large slot may suit one that is not first in line
        this.waiting.splice(0).forEach((wake) => wake());
      }
    })();
    for (const step of group) this.started.push({ step, done });
  }

  async drain(): Promise<void> {
    await Promise.all(this.started.map((s) => s.done));
  }

  private async slot(small: boolean): Promise<void> {
    while (this.running >= this.smallLimit || (!small && this.runningLarge >= this.limit)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running += 1;
    if (!small) this.runningLarge += 1;
  }
}

/** Sends the rest of an interrupted stream (a dry run prints it). */
async function resume(step: ResumeStep, context: ExecutionContext): Promise<{ bytes: number; seconds: number }> {
  const send = resumeSendArgv(step.token);
  const receive = receiveArgv(step.target);
  return mutate(
    context.local,
    context.strategy.describe(send, receive),
    () => {
      const arrived = step.arrived !== undefined ? ` (${humanBytes(step.arrived)} had arrived)` : '';
      context.log.info(`resuming the interrupted receive into ${step.target}${arrived}`);
      return inStream(streamInfo(context, step.source), () => context.strategy.transfer(send, receive));
    },
    NOTHING_SENT,
  );
}

/** A resume that failed is aborted, so the next run starts that dataset clean instead of failing on it again. */
async function abortFailedResume(step: ResumeStep, message: string, context: ExecutionContext): Promise<string> {
  const failed = `resuming the interrupted receive into ${step.target} failed: ${message}`;
  try {
    await context.remote.run(abortReceiveArgv(step.target), { mutates: true });
    return `${failed}; it was aborted (zfs receive -A), so the next run sends it again`;
  } catch (error) {
    return `${failed}; aborting it (zfs receive -A ${step.target}) failed too: ${(error as Error).message}`;
  }
}

/** What a transfer a dry run only printed counts. */
const NOTHING_SENT = { bytes: 0, seconds: 0 };

const MODIFIED = /has been modified/;

/** A failed receive into a target changed on the backup host says how to go on. */
function explained(step: TransferStep, message: string): string {
  if (!MODIFIED.test(message) || !step.common) return message;
  return `${message}. ${step.target} was changed on the backup host after its last snapshot; run again with --rollback to roll it back to ${step.common} (this discards only those changes on the backup host)`;
}

/**
 * A receive cut short keeps what arrived (-s): the error says how much, and that the next run
 * resumes it, rather than only which process happened to exit first.
 */
async function withPartialReceive(
  step: TransferStep,
  tally: DatasetTally,
  message: string,
  context: ExecutionContext,
): Promise<string> {
  try {
    const token = await resumeTokenOf(context.remote, step.target);
    if (!token) return message;
    const bytes = await resumableBytes(context.local, token);
    if (bytes !== undefined) tally.bytes = bytes;
    const arrived = bytes !== undefined ? `${humanBytes(bytes)} of it` : 'part of it';
    return `the stream into ${step.target} broke off: ${message}. ${arrived} arrived and is kept there (receive_resume_token): the next run resumes from there`;
  } catch {
    return message;
  }
}

/** A clone's origin (an image) has its own row, so its stream is not counted as the clone's. */
function sourceOf(step: TransferStep): string {
  return step.carriesImage ? step.source : step.vmDataset;
}

async function runTransfer(step: TransferStep, tally: DatasetTally, context: ExecutionContext): Promise<void> {
  if (step.rollback && step.common) {
    // -r destroys the target's snapshots after the common one, which the planner named (--rollback is the consent)
    await context.remote.run(['zfs', 'rollback', ...(step.discard ? ['-r'] : []), step.common], { mutates: true });
    tally.discarded.push(...(step.discard ?? []).map((name) => `${step.target}@${name}`));
  }
  try {
    await runSends(step, tally, context);
  } catch (error) {
    throw new Error(explained(step, (error as Error).message));
  }
}

/**
 * Small streams in one series (see seriesLanes). The stream it stopped at is that dataset's
 * failure; the ones after it were not tried and go one by one, as they would without a series.
 */
async function runSeries(
  lane: readonly TransferStep[],
  tally: (dataset: string) => DatasetTally,
  context: ExecutionContext,
): Promise<void> {
  const items = lane.map((step) => ({ send: sendArgv(step.sends[0]!), receive: receiveArgv(step.target) }));
  items.forEach((item, index) =>
    context.log.verbose(`send ${describeCommand(item.send)} -> ${lane[index]!.target} (in a series)`),
  );
  const result = await mutate(
    context.local,
    items.map((item) => context.strategy.describe(item.send, item.receive)),
    () =>
      inStream(
        streamInfo(
          context,
          `${lane[0]!.vmDataset}${lane.length > 1 ? ` and ${lane.length - 1} more in a series` : ''}`,
        ),
        () => context.strategy.transferSeries!(items),
      ),
    { received: items.map(() => NOTHING_SENT) },
  );
  result.received.forEach((received, index) => {
    const o = tally(lane[index]!.vmDataset);
    o.bytes += received.bytes;
    o.seconds += received.seconds;
  });
  if (!result.error) return;
  const stopped = lane[result.received.length]!;
  tally(stopped.vmDataset).error = explained(stopped, result.error);
  for (const step of lane.slice(result.received.length + 1)) {
    const o = tally(step.vmDataset);
    try {
      await runTransfer(step, o, context);
    } catch (error) {
      o.error = (error as Error).message;
    }
  }
}

async function runSends(step: TransferStep, tally: DatasetTally, context: ExecutionContext): Promise<void> {
  for (const [index, send] of step.sends.entries()) {
    const receive = receiveArgv(step.target, { origin: index === 0 ? step.cloneOrigin : undefined });
    const result = await mutate(
      context.local,
      context.strategy.describe(sendArgv(send), receive),
      async () => {
        context.log.verbose(`send ${describeCommand(sendArgv(send))} -> ${step.target}`);
        // a full or multi-snapshot stream has no `written` figure: zfs send -nP sizes it for the progress ETA
        const estimate = step.added ?? (await sendEstimate(context.local, sendArgv(send)));
        return inStream(streamInfo(context, sourceOf(step), estimate), () =>
          context.strategy.transfer(sendArgv(send), receive, { estimatedBytes: step.added }),
        );
      },
      NOTHING_SENT,
    );
    tally.bytes += result.bytes;
    tally.seconds += result.seconds;
  }
}

/** What `zfs send -nP` says the stream will be (undefined when it cannot tell: the stream goes anyway). */
async function sendEstimate(local: Host, send: readonly string[]): Promise<number | undefined> {
  try {
    const dry = await local.run([send[0]!, send[1]!, '-nP', ...send.slice(2)], { mutates: false, allowExitCodes: [1] });
    return dry.exitCode === 0 ? parseSendEstimate(dry.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** A stream in flight as transfer/progress.ts lists it; named by the backup host when the caller gave no target name. */
function streamInfo(context: ExecutionContext, dataset: string, estimatedBytes?: number) {
  return {
    uuid: context.streams?.uuid,
    target: context.streams?.target ?? context.remote.label,
    dataset,
    estimatedBytes,
  };
}
