import { loadConfig } from '../config/load.js';
import { formatAge, parseDuration } from '../status/health.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids } from './session.js';
import { collectStatuses } from './status-command.js';

export interface CheckFlags {
  config?: string;
  warn: string;
  crit: string;
  target?: string;
}

const STATES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

/** Nagios-style: one line, exit 0/1/2/3 by the age of each VM's newest complete backup. */
export async function checkCommand(uuids: string[], flags: CheckFlags): Promise<number> {
  let code = 3;
  let line: string;
  try {
    checkUuids(uuids);
    const warn = parseDuration(flags.warn);
    const crit = parseDuration(flags.crit);
    const config = loadConfig(flags.config ?? defaultConfigPath());
    const statuses = await collectStatuses(config, uuids, { target: flags.target });
    const unknown = statuses.filter((s) => s.error);
    const critical = statuses.filter((s) => !s.error && s.ageSeconds >= crit);
    const warning = statuses.filter((s) => !s.error && s.ageSeconds >= warn && s.ageSeconds < crit);
    code = unknown.length ? 3 : critical.length ? 2 : warning.length ? 1 : 0;
    const name = (s: (typeof statuses)[number]) => s.alias ?? s.uuid;
    const worst = [...statuses].filter((s) => !s.error).sort((a, b) => b.ageSeconds - a.ageSeconds)[0];
    const parts = [
      ...unknown.map((s) => `${name(s)}: ${s.error}`),
      ...critical.map((s) => `${name(s)} last backup ${formatAge(s.ageSeconds)} ago`),
      ...warning.map((s) => `${name(s)} last backup ${formatAge(s.ageSeconds)} ago`),
    ];
    line = parts.length
      ? parts.join('; ')
      : `${statuses.length} VM(s) backed up, oldest ${worst ? `${formatAge(worst.ageSeconds)} ago (${name(worst)})` : '-'}`;
    if (statuses.length === 0) [code, line] = [3, 'no VMs found'];
  } catch (error) {
    line = (error as Error).message;
  }
  process.stdout.write(`ZONECOPY ${STATES[code]} - ${line}\n`);
  return code;
}
