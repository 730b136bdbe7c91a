import { describeCommand, type Host } from '../host/host.js';
import type { Log } from '../log.js';
import type { HoldStep, Step, TransferStep } from '../plan/steps.js';
import { createParentArgv, destroySnapshotsArgv, receiveArgv, sendArgv, snapshotArgv } from '../zfs/commands.js';
import { SMALL_STREAM_BYTES } from '../transfer/ssh.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import { holdCommands } from '../zfs/holds.js';
import { isWithin, splitSnapshot } from '../zfs/names.js';

export interface ExecutionContext {
  local: Host;
  remote: Host;
  strategy: TransferStrategy;
  log: Log;
  /** Transfers in flight at once (default 1). */
  concurrency?: number;
}

/** What happened to each VM dataset (keyed by source dataset name). */
export interface DatasetOutcome {
  bytes: number;
  seconds: number;
  error?: string;
  rotatedLocal: string[];
  rotatedRemote: string[];
}

export interface Execution {
  outcomes: Map<string, DatasetOutcome>;
  /** Errors not tied to one dataset's transfer (rotation, spec upload). */
  errors: string[];
}

export class SnapshotFailedError extends Error {
  override name = 'SnapshotFailedError';
}

/**
 * Runs the plan in order. A failed snapshot stops everything before anything is sent; a failed
 * transfer marks its dataset failed, so its later steps (the clone after its origin, its rotation)
 * are skipped while other datasets continue.
 */
export async function executePlan(steps: readonly Step[], context: ExecutionContext): Promise<Execution> {
  const outcomes = new Map<string, DatasetOutcome>();
  const errors: string[] = [];
  const outcome = (dataset: string) => {
    let o = outcomes.get(dataset);
    if (!o) outcomes.set(dataset, (o = { bytes: 0, seconds: 0, rotatedLocal: [], rotatedRemote: [] }));
    return o;
  };
  const holdFailed = new Set<'local' | 'remote'>();
  const transfers = new TransferPool(context.concurrency ?? 1);
  let sizes: Promise<Map<string, number>> | undefined;
  const holdOrRelease = async (step: HoldStep) => {
    const failed = (e: { dataset: string }) => Boolean(outcome(e.dataset).error);
    const snapshots = step.snapshots.filter((e) => !failed(e)).map((e) => e.snapshot);
    if (snapshots.length === 0 || (step.kind === 'release' && holdFailed.has(step.side))) return;
    const host = step.side === 'local' ? context.local : context.remote;
    const keep = [...step.others, ...step.snapshots.filter(failed).map((e) => splitSnapshot(e.snapshot).dataset)];
    try {
      for (const argv of holdCommands(step.kind, step.tag, snapshots, keep)) await host.run(argv, { mutates: true });
    } catch (error) {
      if (step.kind === 'hold') holdFailed.add(step.side);
      errors.push(`${step.kind} ${step.tag} on ${host.label} failed: ${(error as Error).message}`);
    }
  };
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index]!;
    if (step.kind !== 'transfer' && step.kind !== 'create-parent') await transfers.drain();
    switch (step.kind) {
      case 'snapshot':
        try {
          await context.local.run(snapshotArgv(step.snapshots), { mutates: true });
          context.log.verbose(`snapshot ${step.snapshots.join(' ')}`);
        } catch (error) {
          throw new SnapshotFailedError(`snapshot of pool ${step.pool} failed, nothing was sent: ${(error as Error).message}`);
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
        const o = outcome(step.dataset);
        sizes ??= addedBytes(steps, context.local);
        const known = await sizes;
        const small = step.sends.every((send) => (known.get(send.to) ?? Infinity) < SMALL_STREAM_BYTES);
        await transfers.start(step, small, async () => {
          if (o.error) return;
          try {
            await runTransfer(step, o, context, known);
          } catch (error) {
            o.error = (error as Error).message;
          }
        });
        break;
      }
      case 'hold':
      case 'release': {
        // the local and the remote side of one kind at once; every hold ends before any release
        const group: HoldStep[] = [step];
        while (steps[index + 1]?.kind === step.kind) group.push(steps[++index] as HoldStep);
        await Promise.all(group.map(holdOrRelease));
        break;
      }
      case 'rotate': {
        const o = outcome(step.dataset);
        if (o.error) break;
        const host = step.side === 'local' ? context.local : context.remote;
        try {
          await host.run(destroySnapshotsArgv(step.on, step.destroy), { mutates: true });
          (step.side === 'local' ? o.rotatedLocal : o.rotatedRemote).push(...step.destroy.map((s) => `${step.on}@${s}`));
        } catch (error) {
          errors.push(`rotation on ${host.label} failed for ${step.on}: ${(error as Error).message}`);
        }
        break;
      }
      case 'store-spec':
        try {
          // one channel per file, side by side over the one connection
          await Promise.all(
            step.files.map((file) =>
              context.remote.run(['sh', '-c', 'mkdir -p "$1" && cat > "$1/$2.tmp" && mv "$1/$2.tmp" "$1/$2"', 'sh', step.directory, file.name], {
                mutates: true,
                input: file.content,
              }),
            ),
          );
        } catch (error) {
          errors.push(`storing the VM spec in ${step.directory} on the backup host failed: ${(error as Error).message}`);
        }
        break;
    }
  }
  await transfers.drain();
  return { outcomes, errors };
}

/**
 * One `zfs get written` for the snapshots just taken that go as an incremental from the snapshot
 * right before them: what each adds, so a strategy can pick the path that suits its size.
 */
async function addedBytes(steps: readonly Step[], local: Host): Promise<Map<string, number>> {
  const snapshots = steps.flatMap((s) =>
    s.kind === 'transfer' && !s.origin && s.sends.length === 1 && s.sends[0]!.from && !s.sends[0]!.intermediates ? [s.sends[0]!.to] : [],
  );
  const sizes = new Map<string, number>();
  if (snapshots.length === 0 || local.dryRun) return sizes;
  const out = await local.run(['zfs', 'get', '-Hp', '-o', 'name,value', 'written', ...snapshots], { mutates: false, allowExitCodes: [1] });
  for (const line of out.stdout.split('\n')) {
    const [name, value] = line.split('\t');
    if (name && /^\d+$/.test(value ?? '')) sizes.set(name, Number(value));
  }
  return sizes;
}

/**
 * Small streams (a run over many datasets that changed little) cost process starts and a pool
 * sync each, not bandwidth: up to four times `transferConcurrency` of them run at once, but at
 * most 8 (small streams go over ssh2 channels of the one connection, and sshd's default
 * MaxSessions of 10 counts each of them, with room left for control commands).
 */
export function smallLimit(limit: number): number {
  return Math.max(limit, Math.min(8, limit * 4));
}

/**
 * Runs transfers side by side, at most `limit` large ones and `smallLimit` in all, but never
 * before what a transfer builds on: an earlier transfer of the same VM dataset (a clone's
 * origin), or of a dataset above its target (a child is received under its parent).
 */
export class TransferPool {
  private readonly started: Array<{ step: TransferStep; done: Promise<void> }> = [];
  private running = 0;
  private runningLarge = 0;
  private readonly waiting: Array<() => void> = [];

  private readonly smallLimit: number;

  constructor(private readonly limit: number) {
    this.smallLimit = smallLimit(limit);
  }

  async start(step: TransferStep, small: boolean, work: () => Promise<void>): Promise<void> {
    const after = this.started.filter((s) => s.step.dataset === step.dataset || isWithin(step.target, s.step.target)).map((s) => s.done);
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
    this.started.push({ step, done });
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

const MODIFIED = /has been modified/;

async function runTransfer(step: TransferStep, outcome: DatasetOutcome, context: ExecutionContext, sizes: ReadonlyMap<string, number>): Promise<void> {
  if (step.rollback && step.common) await context.remote.run(['zfs', 'rollback', step.common], { mutates: true });
  try {
    await runSends(step, outcome, context, sizes);
  } catch (error) {
    const message = (error as Error).message;
    if (!MODIFIED.test(message) || !step.common) throw error;
    throw new Error(`${message}. ${step.target} was changed on the backup host after its last snapshot; run again with --rollback to roll it back to ${step.common} (this discards only those changes on the backup host)`);
  }
}

async function runSends(step: TransferStep, outcome: DatasetOutcome, context: ExecutionContext, sizes: ReadonlyMap<string, number>): Promise<void> {
  for (const [index, send] of step.sends.entries()) {
    const receive = receiveArgv(step.target, { origin: index === 0 ? step.origin : undefined });
    if (context.remote.dryRun) {
      context.local.skipped(context.strategy.describe(sendArgv(send), receive));
      continue;
    }
    context.log.verbose(`send ${describeCommand(sendArgv(send))} -> ${step.target}`);
    const result = await context.strategy.transfer(sendArgv(send), receive, { estimatedBytes: sizes.get(send.to) });
    outcome.bytes += result.bytes;
    outcome.seconds += result.seconds;
  }
}
