import { CommandError, type Host } from '../host/host.js';
import type { Log } from '../log.js';
import { guestAgentCommand, GuestAgentTimeout } from '../smartos/guest-agent.js';
import type { HookCall, HookKind, HookPlan, PreFailureMode } from './hooks.js';

/**
 * Runs a VM's hooks around its snapshot, for both targets (backup host and object storage): the
 * pre hooks, the snapshot, then the post hook of every pre hook that started, also when a pre hook
 * or the snapshot failed, so nothing is left paused or frozen.
 */

export interface HookOutcome {
  phase: HookCall['phase'];
  kind: HookKind;
  source: string;
  command: string;
  result: 'ok' | 'failed' | 'timed out';
  seconds: number;
  exitCode?: number;
  /** Why it failed (the last lines of its stderr, or the timeout). */
  error?: string;
}

/** What a backup set records about how consistent its snapshot is (stored beside it, shown by status and restore --list). */
export interface ConsistencyRecord {
  format: 1;
  /** `application`: every pre hook succeeded; `crash`: none ran or one failed; `stopped`: the VM was not running. */
  consistency: 'application' | 'crash' | 'stopped';
  onPreFailure?: PreFailureMode;
  hooks: HookOutcome[];
  notes: string[];
}

/** A pre hook failed with onPreFailure "fail": nothing was snapshotted. */
export class HookFailedError extends Error {
  override name = 'HookFailedError';
}

/** Before any hook ran: a stopped VM's files are at rest; anything else is crash-consistent until its pre hooks succeed. */
export function emptyRecord(state?: unknown): ConsistencyRecord {
  return { format: 1, consistency: state === 'stopped' ? 'stopped' : 'crash', hooks: [], notes: [] };
}

/**
 * One hook through the Host: argv, its own process group, its timeout; --dry-run prints it there.
 * A guest-agent hook talks to the socket from this process (the Host is this machine's).
 */
export async function runHook(hook: HookCall, host: Host): Promise<HookOutcome> {
  const started = performance.now();
  const base = { phase: hook.phase, kind: hook.kind, source: hook.source, command: hook.command };
  const seconds = () => Math.round(performance.now() - started) / 1000;
  if (hook.agent && !host.dryRun) {
    try {
      await guestAgentCommand(hook.agent.socket, hook.agent.command, hook.timeoutSeconds * 1000);
      return { ...base, result: 'ok', seconds: seconds() };
    } catch (error) {
      const timedOut = error instanceof GuestAgentTimeout;
      const message = timedOut ? `did not finish within ${hook.timeoutSeconds} s` : (error as Error).message;
      return { ...base, result: timedOut ? 'timed out' : 'failed', seconds: seconds(), error: message };
    }
  }
  try {
    await host.run(hook.argv, { mutates: true, timeoutMs: hook.timeoutSeconds * 1000, processGroup: true });
    return { ...base, result: 'ok', seconds: seconds(), exitCode: 0 };
  } catch (error) {
    const result = error instanceof CommandError ? error.result : undefined;
    const stderr = result?.stderr.trim().split('\n').slice(-3).join(' / ');
    if (result?.timedOut)
      return {
        ...base,
        result: 'timed out',
        seconds: seconds(),
        error: `did not finish within ${hook.timeoutSeconds} s; killed with its process group`,
      };
    const why = result ? `exited ${result.exitCode}${stderr ? `: ${stderr}` : ''}` : (error as Error).message;
    return {
      ...base,
      result: 'failed',
      seconds: seconds(),
      ...(result ? { exitCode: result.exitCode } : {}),
      error: why,
    };
  }
}

export function describeOutcome(o: HookOutcome): string {
  return `${o.phase} ${o.kind} hook (${o.source}) ${o.result}${o.error ? `: ${o.error}` : ''}`;
}

/**
 * Pre hooks, `snapshot`, post hooks, filling `record` as it goes (so it is complete whatever is
 * thrown). A failing pre hook with onPreFailure "fail" stops the rest and throws HookFailedError;
 * with "crash-consistent" the snapshot is taken anyway. A post hook that failed (the application
 * may still be paused) goes into `errors`, also when the snapshot failed.
 */
export async function snapshotWithHooks(
  plan: HookPlan | undefined,
  sinks: { record: ConsistencyRecord; errors: string[] },
  context: { local: Host; log: Log },
  snapshot: () => Promise<void>,
): Promise<void> {
  const { record, errors } = sinks;
  if (!plan) {
    await snapshot();
    return;
  }
  record.onPreFailure = plan.onPreFailure;
  record.notes.push(...plan.notes);
  const started = new Set<HookKind>();
  let failed: HookOutcome | undefined;
  let snapshotTried = false;
  const run = async (hook: HookCall) => {
    const outcome = await runHook(hook, context.local);
    record.hooks.push(outcome);
    context.log.verbose(describeOutcome(outcome));
    return outcome;
  };
  try {
    for (const hook of plan.pre) {
      if (failed && plan.onPreFailure === 'fail') break;
      started.add(hook.kind);
      const outcome = await run(hook);
      if (outcome.result !== 'ok') failed ??= outcome;
    }
    if (failed && plan.onPreFailure === 'fail') {
      throw new HookFailedError(
        `${describeOutcome(failed)}; nothing was snapshotted (hooks onPreFailure "fail"; "crash-consistent" would snapshot anyway)`,
      );
    }
    if (failed) {
      context.log.warn(
        `${describeOutcome(failed)}; snapshotting anyway, crash-consistent (hooks onPreFailure "crash-consistent")`,
      );
      record.notes.push(`crash-consistent: ${describeOutcome(failed)}; went on per onPreFailure "crash-consistent"`);
    }
    snapshotTried = true;
    await snapshot();
    if (record.consistency !== 'stopped') record.consistency = !failed && plan.pre.length > 0 ? 'application' : 'crash';
  } finally {
    for (const hook of plan.post) {
      const hasPre = plan.pre.some((p) => p.kind === hook.kind);
      // a post hook pairs with its pre hook; one without a pre hook runs whenever the snapshot was tried
      if (hasPre ? !started.has(hook.kind) : !snapshotTried) continue;
      const outcome = await run(hook);
      if (outcome.result !== 'ok')
        errors.push(
          `${describeOutcome(outcome)}: the application or guest may still be paused or frozen; check the VM`,
        );
    }
  }
}

/** One line for reports and listings: `application-consistent (pre zone ok 0.2 s, post zone ok)`. */
export function consistencyLine(record: ConsistencyRecord | undefined): string {
  if (!record) return 'crash-consistent (no hooks)';
  const words = {
    application: 'application-consistent',
    crash: 'crash-consistent',
    stopped: 'consistent (VM not running)',
  }[record.consistency];
  const hooks = record.hooks.map((h) => `${h.phase} ${h.kind} ${h.result} ${h.seconds.toFixed(1)} s`);
  return hooks.length > 0 ? `${words} (${hooks.join(', ')})` : words;
}
