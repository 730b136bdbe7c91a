import { loadConfig } from '../config/load.js';
import { selectTargets } from '../config/targets.js';
import { LocalHost } from '../host/local.js';
import { drillLine } from '../report/render.js';
import { formatDuration } from '../report/stale.js';
import { DRILL_DIRECTORY, readDrillRecord, type DrillRecord } from '../restore/drill-record.js';
import { allVmUuids, type VmStatus } from '../status/collect.js';
import { formatAge, parseDuration } from '../status/health.js';
import { readServiceState, type StateRead } from '../service/state-file.js';
import { serveConfigured, serviceStateFile, serviceStopped } from '../status/watch.js';
import { formatDuration as formatSeconds } from '../report/progress.js';
import type { Config } from '../config/schema.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, chooseTarget, UsageError } from './session.js';
import { targetStatuses } from './status-command.js';

export interface CheckFlags {
  config?: string;
  warn: string;
  crit: string;
  target?: string;
}

const STATES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

/**
 * Nagios-style: one line, exit 0/1/2/3 by the age of each VM's newest complete backup on each
 * target (the one --target names, else every target), and CRITICAL where a target is behind its staleAfter.
 */
export async function checkCommand(uuids: string[], flags: CheckFlags): Promise<number> {
  let verdict: Verdict;
  let config: Config | undefined;
  try {
    checkUuids(uuids);
    const warn = parseDuration(flags.warn);
    const crit = parseDuration(flags.crit);
    config = loadConfig(flags.config ?? defaultConfigPath());
    const targets = selectTargets(config, flags.target);
    if ('error' in targets) throw new UsageError(targets.error);
    const vms = uuids.length ? uuids : await allVmUuids(new LocalHost(false));
    const checked: TargetStatuses[] = [];
    for (const t of targets) {
      const staleAfter = t.config.staleAfter === undefined ? {} : { staleAfter: parseDuration(t.config.staleAfter) };
      try {
        const statuses = await targetStatuses(t.config, chooseTarget(t.config, t.type), vms);
        checked.push({ target: t.name, ...staleAfter, statuses });
      } catch (error) {
        // one target that cannot be read leaves the others checked
        checked.push({ target: t.name, ...staleAfter, statuses: [], error: (error as Error).message });
      }
    }
    const aliases = new Map(checked.flatMap((t) => t.statuses.map((s) => [s.uuid, s.alias] as const)));
    const drills = vms.map((uuid) => ({
      name: aliases.get(uuid) ?? uuid,
      record: readDrillRecord(DRILL_DIRECTORY, uuid),
    }));
    verdict = withDrills(checkVerdict(checked, warn, crit), drills, Date.now());
  } catch (error) {
    // a check that cannot look says so as UNKNOWN: to a monitor, exit 2 would mean CRITICAL
    verdict = { code: 3, line: (error as Error).message };
  }
  if (config) verdict = withService(verdict, await checkService(config, Date.now() / 1000));
  const details = verdict.details?.length ? `${verdict.details.join('\n')}\n` : '';
  process.stdout.write(`ZONECOPY ${STATES[verdict.code]} - ${verdict.line}\n${details}`);
  return verdict.code;
}

export interface Verdict {
  code: 0 | 1 | 2 | 3;
  line: string;
  /** Lines after the first (a monitor's long output): each VM's last restore drill. */
  details?: string[];
}

/**
 * The verdict with each VM's last restore drill (pure): a failed last drill makes an OK check a
 * WARNING and is named on the first line; a VM never drilled is no error. Every drill is listed below the line.
 */
export function withDrills(
  verdict: Verdict,
  drills: ReadonlyArray<{ name: string; record?: DrillRecord }>,
  now: number,
): Verdict {
  const drilled = drills.flatMap(({ name, record }) => (record ? [{ name, record }] : []));
  const never = drills.filter((d) => !d.record).map((d) => d.name);
  const details = [
    ...drilled.map(({ name, record }) => `${name}: ${drillLine(record, now)}`),
    ...(drilled.length && never.length ? [`no restore drill yet: ${never.join(', ')}`] : []),
  ];
  const failed = drilled.filter(({ record }) => record.result === 'failed');
  const failures = failed.map(({ name, record }) => `${name} last restore drill of ${record.snapshot} FAILED`);
  if (failures.length === 0) return details.length ? { ...verdict, details } : verdict;
  const line =
    verdict.code === 0 ? `${failures.join('; ')}; ${verdict.line}` : `${verdict.line}; ${failures.join('; ')}`;
  return { code: verdict.code === 0 ? 1 : verdict.code, line, details };
}

/** What check read from one target: each VM's status, or why it could not. */
export interface TargetStatuses {
  target: string;
  /** The target's staleAfter in seconds, when set. */
  staleAfter?: number;
  statuses: readonly VmStatus[];
  error?: string;
}

/**
 * The check's state and line from each target's VM statuses and the two ages in seconds (pure).
 * A VM older than its target's staleAfter is CRITICAL with that target named; lines name the
 * target only when there are several.
 */
export function checkVerdict(targets: readonly TargetStatuses[], warn: number, crit: number): Verdict {
  const several = targets.length > 1;
  const on = (t: TargetStatuses) => (several ? ` on ${t.target}` : '');
  const rows = targets.flatMap((t) => t.statuses.map((s) => ({ t, s })));
  const failed = targets.filter((t) => t.error);
  if (rows.length === 0 && failed.length === 0) return { code: 3, line: 'no VMs found' };
  const name = (s: VmStatus) => s.alias ?? s.uuid;
  const readable = rows.filter(({ s }) => !s.error);
  const stale = readable.filter(({ t, s }) => t.staleAfter !== undefined && s.ageSeconds > t.staleAfter);
  const aged = readable.filter((r) => !stale.includes(r));
  const critical = aged.filter(({ s }) => s.ageSeconds >= crit);
  const warning = aged.filter(({ s }) => s.ageSeconds >= warn && s.ageSeconds < crit);
  const unknown = [
    ...failed.map((t) => `${several ? `${t.target}: ` : ''}${t.error}`),
    ...rows.filter(({ s }) => s.error).map(({ t, s }) => `${name(s)}${on(t)}: ${s.error}`),
  ];
  const code = unknown.length ? 3 : critical.length || stale.length ? 2 : warning.length ? 1 : 0;
  const age = ({ t, s }: (typeof rows)[number]) => `${name(s)}${on(t)} last backup ${formatAge(s.ageSeconds)} ago`;
  const parts = [...unknown, ...stale.map(({ t, s }) => behindText(t, s)), ...critical.map(age), ...warning.map(age)];
  if (parts.length) return { code, line: parts.join('; ') };
  const worst = [...readable].sort((a, b) => b.s.ageSeconds - a.s.ageSeconds)[0];
  const oldest = worst ? `${formatAge(worst.s.ageSeconds)} ago (${name(worst.s)}${on(worst.t)})` : '-';
  const vms = new Set(readable.map(({ s }) => s.uuid)).size;
  return { code, line: `${vms} VM(s) backed up${several ? ` to ${targets.length} targets` : ''}, oldest ${oldest}` };
}

/** `target offsite is behind for db01: newest common snapshot daily-… is 3.0d old (staleAfter 2d)`. */
function behindText(t: TargetStatuses, s: VmStatus): string {
  const stale = `(staleAfter ${formatDuration(t.staleAfter!)})`;
  // the VM's age is its oldest dataset's: that dataset's newest common snapshot is the one to name
  const snapshot = s.datasets.find((d) => d.newestCommon && d.newestCommon.ageSeconds === s.ageSeconds)?.newestCommon
    ?.name;
  const what = snapshot
    ? `newest common snapshot ${snapshot} is ${formatAge(s.ageSeconds)} old`
    : 'no snapshot in common';
  return `target ${t.target} is behind for ${s.alias ?? s.uuid}: ${what} ${stale}`;
}

/** What check found of `zonecopy serve`: a problem (stopped, or configured and never started), or a line for the details. */
export interface ServiceCheck {
  code?: 2 | 3;
  problem?: string;
  detail?: string;
}

/** Reads the service's state file (config `serviceStateFile`) and judges it; nothing when no service is expected here. */
export async function checkService(config: object, now: number): Promise<ServiceCheck> {
  const file = serviceStateFile(config);
  return serviceVerdict(await readServiceState(file), serveConfigured(config), file, now);
}

/**
 * A state file whose heartbeat is older than the service's limit (3 × its shortest `every`, at least
 * 60 s) is CRITICAL: the service stopped cycling. So is a configuration with policies and no state
 * file. A state file that cannot be read is UNKNOWN. Without policies and without a file no service is expected.
 */
export function serviceVerdict(read: StateRead, configured: boolean, file: string, now: number): ServiceCheck {
  if ('state' in read) {
    const stopped = serviceStopped(read.state, file, now);
    if (stopped) return { code: 2, problem: stopped };
    return {
      detail: `zonecopy serve pid ${read.state.pid}: heartbeat ${formatSeconds(now - read.state.heartbeat)} ago (${file})`,
    };
  }
  if (read.missing) return configured ? { code: 2, problem: `policies are configured but ${read.error}` } : {};
  return { code: 3, problem: read.error };
}

/** The backups' verdict with the service's: a stopped service makes the check CRITICAL and leads its line. */
export function withService(verdict: Verdict, service: ServiceCheck): Verdict {
  if (service.detail) return { ...verdict, details: [service.detail, ...(verdict.details ?? [])] };
  if (!service.problem || !service.code) return verdict;
  const code = service.code === 2 ? 2 : verdict.code === 0 || verdict.code === 1 ? 3 : verdict.code;
  return { ...verdict, code, line: `${service.problem}; ${verdict.line}` };
}
