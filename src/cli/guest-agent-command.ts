import { AGENT_COMMANDS, guestAgentCommand } from '../smartos/guest-agent.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { UsageError } from './session.js';

/**
 * `zonecopy guest-agent <socket> <command>`: one command to a KVM guest's QEMU agent, its answer as
 * JSON on stdout. Backups run it as a hook (through the Host, so --dry-run prints it and its timeout
 * applies); operators can ask `guest-fsfreeze-status` with it.
 */
export async function guestAgentCli(socket: string, command: string): Promise<number> {
  if (!(AGENT_COMMANDS as readonly string[]).includes(command))
    throw new UsageError(
      `guest-agent: unknown command ${JSON.stringify(command)}; one of ${AGENT_COMMANDS.join(', ')}`,
    );
  try {
    process.stdout.write(`${JSON.stringify(await guestAgentCommand(socket, command))}\n`);
    return EXIT_OK;
  } catch (error) {
    process.stderr.write(`zonecopy guest-agent: ${(error as Error).message}\n`);
    return EXIT_FAILED;
  }
}
