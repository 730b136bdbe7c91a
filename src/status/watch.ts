/**
 * `zonecopy status --watch`: a live view drawn from the state file `zonecopy serve` keeps, and the one
 * test of whether a service is alive that `check` uses too.
 */
import { averageRate, formatDuration, progressLines, RateMeter, type StreamView } from '../report/progress.js';
import { humanBytes } from '../report/render.js';
import type { ServiceState, VmTargetState } from '../service/state.js';
import { readServiceState } from '../service/state-file.js';
import { parseDuration } from './health.js';

export const DEFAULT_SERVICE_STATE_FILE = '/var/zonecopy/service.json';

/** The state file's path from the configuration (`serviceStateFile`), or the default. */
export function serviceStateFile(config: object): string {
  return (config as { serviceStateFile?: string }).serviceStateFile ?? DEFAULT_SERVICE_STATE_FILE;
}

/** Whether serve is configured: a configuration with policies expects a service to be running. */
export function serveConfigured(config: object): boolean {
  const policies = (config as { policies?: unknown }).policies;
  return Array.isArray(policies) && policies.length > 0;
}

/** Seconds of a policy's `every 15s`, or undefined for a schedule. */
function everySeconds(when: string): number | undefined {
  const m = /^every\s+(.+)$/.exec(when.trim());
  if (!m) return undefined;
  try {
    return parseDuration(m[1]!);
  } catch {
    return undefined;
  }
}

/** Floor of the heartbeat limit: the loop writes every few seconds, a slow disk or a busy host must not page anyone. */
export const MIN_HEARTBEAT_LIMIT = 60;

/**
 * How old the heartbeat may grow before the service counts as stopped: 3 × the shortest `every` of its
 * policies, at least 60 s (the scheduler loop writes the file every few seconds whatever the policies).
 */
export function heartbeatLimit(state: Pick<ServiceState, 'policies'>): number {
  const intervals = state.policies.flatMap((p) => everySeconds(p.when) ?? []);
  return Math.max(MIN_HEARTBEAT_LIMIT, ...intervals.map((s) => 3 * s));
}

/** Why the service is not running, or undefined when its heartbeat is fresh. */
export function serviceStopped(state: ServiceState, file: string, now: number): string | undefined {
  const age = now - state.heartbeat;
  const limit = heartbeatLimit(state);
  if (age <= limit) return undefined;
  if (state.stoppedAt !== undefined)
    return `zonecopy serve (pid ${state.pid}) was stopped ${formatDuration(now - state.stoppedAt)} ago (${file}); start it again (svcadm enable zonecopy)`;
  return `zonecopy serve (pid ${state.pid}) stopped cycling: heartbeat ${formatDuration(age)} ago in ${file} (limit ${formatDuration(limit)})`;
}

const ago = (now: number, at: number | undefined) => (at === undefined ? 'never' : `${formatDuration(now - at)} ago`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map(
    (r) =>
      `  ${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}`,
  );
}

function vmStatus(vm: VmTargetState): string {
  if (vm.running) return 'running';
  if (vm.lastStatus === undefined) return 'not run yet';
  return vm.lastStatus;
}

/**
 * The whole view for one moment (pure): the service line, each policy, each VM and target, and the
 * streams in flight. `now` is Unix seconds; `rateOf` gives a stream's bytes per second (default: since it started).
 */
export function renderWatch(
  state: ServiceState,
  file: string,
  now: number,
  options: { uuids?: readonly string[]; rateOf?: (s: StreamView) => number } = {},
): string[] {
  const stopped = serviceStopped(state, file, now);
  const lines = [
    `zonecopy serve pid ${state.pid}, up ${formatDuration(now - state.startedAt)}, heartbeat ${ago(now, state.heartbeat)} (${file})`,
    `config ${state.config.path}, loaded ${ago(now, state.config.loadedAt)}${
      state.config.reloadError
        ? `; the last reload was refused, the previous config is kept: ${state.config.reloadError}`
        : ''
    }`,
  ];
  if (stopped) lines.push(`! ${stopped}`);

  lines.push('', 'policies:');
  if (state.policies.length === 0) lines.push('  (none)');
  else {
    const rows = [['policy', 'when', 'cycles', 'skipped', 'last started', 'last finished', 'next']];
    for (const p of state.policies)
      rows.push([
        p.name,
        p.when,
        String(p.cycles),
        String(p.skipped),
        ago(now, p.lastStartedAt),
        ago(now, p.lastFinishedAt),
        p.nextAt === undefined ? '-' : p.nextAt <= now ? 'due' : `in ${formatDuration(p.nextAt - now)}`,
      ]);
    lines.push(...table(rows));
    for (const p of state.policies) for (const note of p.notes) lines.push(`  ! ${p.name}: ${note}`);
  }

  const wanted = options.uuids?.length ? new Set(options.uuids) : undefined;
  const vms = state.vms.filter((vm) => !wanted || wanted.has(vm.uuid));
  lines.push('', 'VMs:');
  if (vms.length === 0) lines.push('  (none)');
  else {
    const rows = [['vm', 'target', 'policy', 'status', 'last success', 'took', 'RPO lag', 'worst', 'sent', 'failures']];
    for (const vm of vms) {
      const lag = vm.newestSnapshotAt !== undefined ? Math.max(0, now - vm.newestSnapshotAt) : vm.rpoLagSeconds;
      const worst = lag === undefined ? vm.rpoWorstSeconds : Math.max(lag, vm.rpoWorstSeconds ?? 0);
      rows.push([
        vm.alias ? `${vm.alias} (${vm.uuid.slice(0, 8)})` : vm.uuid,
        vm.target,
        vm.policy,
        vmStatus(vm),
        ago(now, vm.lastSuccessAt),
        vm.lastDurationSeconds === undefined ? '-' : formatDuration(vm.lastDurationSeconds),
        lag === undefined ? '-' : formatDuration(lag),
        worst === undefined ? '-' : formatDuration(worst),
        humanBytes(vm.bytesSentTotal),
        String(vm.failuresTotal),
      ]);
    }
    lines.push(...table(rows));
    for (const vm of vms)
      if (vm.lastError) lines.push(`  ! ${vm.alias ?? vm.uuid} -> ${vm.target}: ${vm.lastError.split('\n')[0]}`);
  }

  const streams: StreamView[] = state.transfers
    .filter((t) => !wanted || wanted.has(t.uuid))
    .map((t) => ({ ...t, startedAt: t.startedAt * 1000 }));
  lines.push('', 'streams in flight:');
  if (streams.length === 0) lines.push('  (none)');
  else
    lines.push(
      ...progressLines(streams, options.rateOf ?? ((s) => averageRate(s, now * 1000)), 50, now * 1000).map(
        (l) => `  ${l}`,
      ),
    );
  return lines;
}

export interface WatchOptions {
  file: string;
  intervalMs: number;
  uuids?: readonly string[];
  out: { write(text: string): unknown; isTTY?: boolean };
  /** Ends the watch (Ctrl-C); the watch also ends by itself when it finds no service running. */
  signal?: AbortSignal;
}

/**
 * Redraws the view every interval (clearing the screen on a terminal; one frame after another
 * otherwise). Returns why it ended: undefined when stopped by `signal`, else why there is no service.
 */
export async function watchService(options: WatchOptions): Promise<string | undefined> {
  const meter = new RateMeter();
  while (!options.signal?.aborted) {
    const read = await readServiceState(options.file);
    const now = Date.now() / 1000;
    if (!('state' in read)) return read.error;
    const stopped = serviceStopped(read.state, options.file, now);
    if (stopped) return stopped;
    const streams = read.state.transfers.map((t) => ({ ...t, startedAt: t.startedAt * 1000 }));
    meter.keep(streams);
    const lines = renderWatch(read.state, options.file, now, {
      uuids: options.uuids,
      rateOf: (s) => meter.rate(s, now * 1000),
    });
    options.out.write(
      `${options.out.isTTY ? '\x1b[H\x1b[2J' : ''}${lines.join('\n')}\n${options.out.isTTY ? '' : '\n'}`,
    );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, options.intervalMs);
      function done() {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', done);
        resolve();
      }
      options.signal?.addEventListener('abort', done);
    });
  }
  return undefined;
}
