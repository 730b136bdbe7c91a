import type { Host } from '../host/host.js';
import type { ResumeCheck } from '../plan/resume-plan.js';
import { resumeSendArgv } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';

/**
 * Asks the source about every target an earlier run left with a receive_resume_token: `zfs send
 * -nv -t` only reads, and says whether the rest can still be sent, and for which snapshot.
 */
export async function checkResumes(
  remote: ReadonlyMap<string, DatasetState>,
  local: Host,
): Promise<Map<string, ResumeCheck>> {
  const interrupted = [...remote.values()].filter((state) => state.resumeToken);
  const checks = await Promise.all(
    interrupted.map(async (state): Promise<[string, ResumeCheck]> => {
      const token = state.resumeToken!;
      const out = await local.run(resumeSendArgv(token, true), { mutates: false, allowExitCodes: [1, 2, 255] });
      const contents = `${out.stdout}\n${out.stderr}`;
      const toguid = tokenField(contents, 'toguid');
      const check: ResumeCheck = {
        token,
        accepted: out.exitCode === 0,
        toname: tokenField(contents, 'toname'),
        toguid: toguid ? decimalGuid(toguid) : undefined,
        bytes: tokenBytes(contents),
        refusal: out.exitCode === 0 ? undefined : out.stderr.trim().split('\n').pop(),
      };
      return [state.name, check];
    }),
  );
  return new Map(checks);
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
  const bytes = tokenField(contents, 'bytes');
  return bytes !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(bytes) ? Number(bytes) : undefined;
}

/** One `name = value` line of the token's contents (nvlist_print). */
export function tokenField(contents: string, name: string): string | undefined {
  const match = new RegExp(`^\\s*${name} = (.+?)\\s*$`, 'm').exec(contents);
  return match?.[1];
}

/** Guids are listed in decimal; the token prints them in hex. */
function decimalGuid(value: string): string | undefined {
  try {
    return BigInt(value).toString();
  } catch {
    return undefined;
  }
}
