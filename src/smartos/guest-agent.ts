import { createConnection } from 'node:net';
import { randomInt } from 'node:crypto';

/**
 * A client of the QEMU guest agent's protocol (QMP framing without the greeting: one JSON object
 * a line each way). `guest-sync` with a fresh id first, since a reply left over from an earlier
 * client may still sit in the channel; then the command, whose `return` or `error` is the answer.
 * qemu-ga-ref: guest-sync, guest-fsfreeze-freeze, guest-fsfreeze-thaw, guest-fsfreeze-status.
 */

export class GuestAgentError extends Error {
  override name = 'GuestAgentError';
}

/** The agent did not answer within the time given; the connection was closed. */
export class GuestAgentTimeout extends GuestAgentError {
  override name = 'GuestAgentTimeout';
}

export const AGENT_COMMANDS = [
  'guest-fsfreeze-freeze',
  'guest-fsfreeze-thaw',
  'guest-fsfreeze-status',
  'guest-ping',
] as const;

export type AgentCommand = (typeof AGENT_COMMANDS)[number];

/** Sends `command` over the agent socket and resolves with its `return` value; gives up after `timeoutMs`. */
export async function guestAgentCommand(socket: string, command: string, timeoutMs?: number): Promise<unknown> {
  const connection = createConnection(socket);
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          ended(
            new GuestAgentTimeout(
              `the guest agent at ${socket} did not answer ${command} within ${timeoutMs / 1000} s`,
            ),
          );
          connection.destroy();
        }, timeoutMs);
  connection.setEncoding('utf8');
  const lines: string[] = [];
  let buffered = '';
  let waiter: (() => void) | undefined;
  let failure: Error | undefined;
  connection.on('data', (chunk: string) => {
    // the agent may put 0xFF before a reply to resynchronise (guest-sync-delimited)
    buffered += chunk.replace(/\uFFFD|\xFF/g, '');
    let at;
    while ((at = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, at).trim();
      buffered = buffered.slice(at + 1);
      if (line) lines.push(line);
    }
    waiter?.();
  });
  const ended = (error?: Error) => {
    failure ??= error ?? new GuestAgentError(`the guest agent at ${socket} closed the connection without answering`);
    waiter?.();
  };
  connection.on('error', (error) =>
    ended(new GuestAgentError(`cannot talk to the guest agent at ${socket}: ${error.message}`)),
  );
  connection.on('close', () => ended());
  const next = async (): Promise<Record<string, unknown>> => {
    while (lines.length === 0) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => (waiter = resolve));
    }
    const line = lines.shift()!;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new GuestAgentError(
        `the guest agent at ${socket} answered something that is not JSON: ${line.slice(0, 200)}`,
      );
    }
  };
  try {
    const id = randomInt(1, 2 ** 31);
    connection.write(`${JSON.stringify({ execute: 'guest-sync', arguments: { id } })}\n`);
    for (;;) {
      const reply = await next();
      if (reply.return === id) break;
    }
    connection.write(`${JSON.stringify({ execute: command })}\n`);
    const reply = await next();
    if ('error' in reply) {
      const error = reply.error as { class?: string; desc?: string };
      throw new GuestAgentError(
        `${command} failed in the guest: ${error.desc ?? JSON.stringify(error)}${error.class ? ` (${error.class})` : ''}`,
      );
    }
    return reply.return;
  } finally {
    clearTimeout(timer);
    connection.destroy();
  }
}
