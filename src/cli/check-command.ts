import { loadConfig } from '../config/load.js';
import { formatAge, parseDuration } from '../status/health.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids } from './session.js';
import { collectStatuses } from './status-command.js';
import type { VmStatus } from '../status/collect.js';

export interface CheckFlags {
  config?: string;
  warn: string;
  crit: string;
  target?: string;
}

const STATES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

/** Nagios-style: one line, exit 0/1/2/3 by the age of each VM's newest complete backup. */
export async function checkCommand(uuids: string[], flags: CheckFlags): Promise<number> {
  let verdict: Verdict;
  try {
    checkUuids(uuids);
    const warn = parseDuration(flags.warn);
    const crit = parseDuration(flags.crit);
    const config = loadConfig(flags.config ?? defaultConfigPath());
    verdict = checkVerdict(await collectStatuses(config, uuids, { target: flags.target }), warn, crit);
  } catch (error) {
    // a check that cannot look says so as UNKNOWN: to a monitor, exit 2 would mean CRITICAL
    verdict = { code: 3, line: (error as Error).message };
  }
  process.stdout.write(`ZONECOPY ${STATES[verdict.code]} - ${verdict.line}\n`);
  return verdict.code;
}

export interface Verdict {
  code: 0 | 1 | 2 | 3;
  line: string;
}

/** The check's state and line from the VMs' statuses and the two ages in seconds (pure). */
export function checkVerdict(statuses: readonly VmStatus[], warn: number, crit: number): Verdict {
  if (statuses.length === 0) return { code: 3, line: 'no VMs found' };
  const unknown = statuses.filter((s) => s.error);
  const critical = statuses.filter((s) => !s.error && s.ageSeconds >= crit);
  const warning = statuses.filter((s) => !s.error && s.ageSeconds >= warn && s.ageSeconds < crit);
  const code = unknown.length ? 3 : critical.length ? 2 : warning.length ? 1 : 0;
  const name = (s: VmStatus) => s.alias ?? s.uuid;
  const worst = statuses.filter((s) => !s.error).sort((a, b) => b.ageSeconds - a.ageSeconds)[0];
  const parts = [
    ...unknown.map((s) => `${name(s)}: ${s.error}`),
    ...critical.map((s) => `${name(s)} last backup ${formatAge(s.ageSeconds)} ago`),
    ...warning.map((s) => `${name(s)} last backup ${formatAge(s.ageSeconds)} ago`),
  ];
  const oldest = worst ? `${formatAge(worst.ageSeconds)} ago (${name(worst)})` : '-';
  return { code, line: parts.length ? parts.join('; ') : `${statuses.length} VM(s) backed up, oldest ${oldest}` };
}
