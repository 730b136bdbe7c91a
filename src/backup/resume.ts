import { describeCommand, type Host } from '../host/host.js';
import type { Log } from '../log.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import { abortReceiveArgv, receiveArgv, resumeSendArgv } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';

export interface ResumeOutcome {
  target: string;
  action: 'resumed' | 'aborted' | 'failed';
  bytes: number;
  seconds: number;
  error?: string;
}

/**
 * Finishes what an interrupted run left: every target with a receive_resume_token is resumed
 * with `zfs send -t` when the token still describes a snapshot we have (checked with a dry run
 * first), and aborted with `zfs receive -A` otherwise, so the normal plan can start again.
 */
export async function settleInterruptedReceives(
  remote: ReadonlyMap<string, DatasetState>,
  context: { local: Host; remote: Host; strategy: TransferStrategy; log: Log },
): Promise<ResumeOutcome[]> {
  const outcomes: ResumeOutcome[] = [];
  for (const state of remote.values()) {
    const token = state.resumeToken;
    if (!token) continue;
    const check = await context.local.run(resumeSendArgv(token, true), { mutates: false, allowExitCodes: [1, 2, 255] });
    if (check.exitCode === 0) {
      if (context.remote.dryRun) {
        context.local.skipped(context.strategy.describe(resumeSendArgv(token), receiveArgv(state.name)));
        outcomes.push({ target: state.name, action: 'resumed', bytes: 0, seconds: 0 });
        continue;
      }
      try {
        context.log.info(`resuming the interrupted receive into ${state.name}`);
        const result = await context.strategy.transfer(resumeSendArgv(token), receiveArgv(state.name));
        outcomes.push({ target: state.name, action: 'resumed', ...result });
        continue;
      } catch (error) {
        context.log.warn(
          `resuming into ${state.name} failed (${(error as Error).message}); aborting it and starting over`,
        );
      }
    } else {
      context.log.warn(
        `the resume token of ${state.name} no longer matches the source (${check.stderr.trim().split('\n').pop()}); aborting it`,
      );
    }
    try {
      await context.remote.run(abortReceiveArgv(state.name), { mutates: true });
      outcomes.push({ target: state.name, action: 'aborted', bytes: 0, seconds: 0 });
    } catch (error) {
      outcomes.push({
        target: state.name,
        action: 'failed',
        bytes: 0,
        seconds: 0,
        error: `${describeCommand(abortReceiveArgv(state.name))}: ${(error as Error).message}`,
      });
    }
  }
  return outcomes;
}

/** The target's receive_resume_token, or undefined when no receive into it was interrupted. */
export async function resumeTokenOf(remote: Host, target: string): Promise<string | undefined> {
  const out = await remote.run(['zfs', 'get', '-H', '-o', 'value', 'receive_resume_token', target], {
    mutates: false,
    allowExitCodes: [1],
  });
  const token = out.exitCode === 0 ? out.stdout.trim() : '';
  return token && token !== '-' ? token : undefined;
}

/** Bytes a token says arrived: `zfs send -nv -t` prints its contents (`bytes = 0x1e4c28`) on OpenZFS and illumos alike. */
export async function resumableBytes(local: Host, token: string): Promise<number | undefined> {
  const out = await local.run(resumeSendArgv(token, true), { mutates: false, allowExitCodes: [1, 2, 255] });
  return tokenBytes(`${out.stdout}\n${out.stderr}`);
}

export function tokenBytes(contents: string): number | undefined {
  const match = /^\s*bytes = (0x[0-9a-f]+|\d+)\s*$/im.exec(contents);
  return match ? Number(match[1]) : undefined;
}
