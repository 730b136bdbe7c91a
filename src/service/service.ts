import type { BackupSettings } from '../backup/backup-vm.js';
import { runSettings, type OpenedTarget, type TargetOptions } from '../backup/open-targets.js';
import { backupVms } from '../backup/run-vms.js';
import type { Policy } from '../config/policies-schema.js';
import type { Config } from '../config/schema.js';
import { resolveTargets, type ResolvedTarget } from '../config/targets.js';
import type { LocalHost } from '../host/local.js';
import type { Log } from '../log.js';
import { runStatus, type VmBackupResult } from '../report/types.js';
import { imageFirsts, listVms, selectVms, type VmListing, type VmSelector } from '../smartos/select-vms.js';
import { Connections } from './connections.js';
import { reportCycle } from './cycle-report.js';
import { describeTiming, disappeared, duePolicies, firstFire, nextFire, splitBusy, timingOf } from './scheduler.js';
import {
  SERVICE_STATE_VERSION,
  type PolicyState,
  type ServiceState,
  type TransferState,
  type VmTargetState,
} from './state.js';

/** What the service needs from outside: the config loader, this host, a log, the clock, streams in flight. */
export interface ServiceDeps {
  configPath: string;
  load: (path: string) => Config;
  local: LocalHost;
  log: Log;
  now?: () => number;
  /** Streams in flight in this process (src/transfer/progress.ts). */
  transfers?: () => TransferState[];
  /** Called after each state write (the metrics textfile). */
  onWrite?: (state: ServiceState) => void;
  /** Writes the state file (atomically). */
  write: (path: string, state: ServiceState) => void;
  /** argv that runs zonecopy, for the KVM guest-agent hooks. */
  agentCommand?: string[];
  /** The state file a previous run left: each VM's newest snapshot per target carries over, so its RPO lag is known from the start. */
  previous?: ServiceState;
}

/** The scheduler loop's period: due policies start within a second; the heartbeat is written at most this often when idle. */
const TICK_MS = 1000;
const HEARTBEAT_MS = 5000;

const seconds = (ms: number) => Math.round(ms / 1000);

/**
 * `zonecopy serve`: fires each policy on its schedule, backs up the VMs it selects over connections
 * kept across cycles, never runs two cycles of one VM at once (a late one is skipped and counted),
 * and keeps its state file current. SIGHUP → reload(), SIGTERM → stop().
 */
export class Service {
  readonly state: ServiceState;
  private config: Config;
  private readonly connections = new Connections();
  private readonly nextAt = new Map<string, number | undefined>();
  /** VMs with a cycle running now, whichever policy started it. */
  private readonly running = new Set<string>();
  /** Per policy, the VMs its last cycle matched: one missing next time is reported. */
  private readonly matched = new Map<string, string[]>();
  private readonly cycles = new Set<Promise<void>>();
  private readonly lastStatus = new Map<string, VmBackupResult['status']>();
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private dirty = true;
  private lastWrite = 0;
  private readonly now: () => number;

  constructor(
    config: Config,
    private readonly deps: ServiceDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.config = config;
    const now = this.now();
    this.state = {
      version: SERVICE_STATE_VERSION,
      pid: process.pid,
      startedAt: seconds(now),
      heartbeat: seconds(now),
      config: { path: deps.configPath, loadedAt: seconds(now) },
      policies: [],
      vms: [],
      transfers: [],
    };
    this.applyPolicies(config.policies ?? [], now);
    this.state.vms = carriedOver(deps.previous).filter((v) => this.configured(v));
  }

  get policies(): readonly Policy[] {
    return this.config.policies ?? [];
  }

  /** Starts the loop: an `every` policy fires at once, a cron policy at its next minute. */
  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  /**
   * Runs every policy once now, one after another so that none skips a VM another is backing up
   * (`serve --once`); true when every VM succeeded and no policy had a note.
   */
  async once(): Promise<boolean> {
    const results: VmBackupResult[] = [];
    for (const policy of this.policies) results.push(...(await this.cycle(policy)));
    this.write(true);
    return (
      results.every((r) => r.status === 'success') &&
      this.state.policies.every((p) => p.notes.length === 0 && p.skipped === 0)
    );
  }

  /**
   * SIGHUP: the configuration read again. A bad one keeps the running one and says why (log, state);
   * a good one takes effect at each policy's next cycle (cycles running finish as they began).
   */
  reload(): boolean {
    const now = this.now();
    let config: Config;
    try {
      config = this.deps.load(this.deps.configPath);
      if (!config.policies?.length) throw new Error('the configuration has no "policies": nothing to serve');
    } catch (error) {
      const why = (error as Error).message;
      this.state.config = { ...this.state.config, reloadError: why };
      this.deps.log.warn(`SIGHUP: configuration ${this.deps.configPath} refused, the previous one stays: ${why}`);
      this.touch();
      return false;
    }
    if (config.metricsListen !== this.config.metricsListen)
      this.deps.log.warn('SIGHUP: metricsListen changed; the metrics endpoint moves at the next start');
    this.config = config;
    this.connections.invalidate();
    this.state.config = { path: this.deps.configPath, loadedAt: seconds(now) };
    this.applyPolicies(config.policies ?? [], now);
    this.deps.log.info(
      `SIGHUP: configuration ${this.deps.configPath} reloaded: ${this.policies.map((p) => p.name).join(', ')}`,
    );
    this.touch();
    return true;
  }

  /** SIGTERM: no new cycle; the running ones end (their streams end, or are left resumable), then everything is closed. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.cycles.size > 0) this.deps.log.info(`stopping: waiting for ${this.running.size} VM(s) to finish`);
    while (this.cycles.size > 0) await Promise.allSettled(this.cycles);
    await this.connections.closeAll();
    for (const p of this.state.policies) delete p.nextAt;
    // check then says the service was stopped, not that it hangs
    this.state.stoppedAt = seconds(this.now());
    this.write(true);
  }

  /** Connections made so far (the first and every reconnect). */
  get connects(): number {
    return this.connections.connects;
  }

  private applyPolicies(policies: readonly Policy[], now: number): void {
    const before = new Map(this.state.policies.map((p) => [p.name, p]));
    this.state.policies = policies.map((policy) => {
      const timing = timingOf(policy);
      const when = describeTiming(timing);
      const old = before.get(policy.name);
      // a policy whose timing is unchanged keeps its place in time; a new or changed one starts afresh
      if (!old || old.when !== when) this.nextAt.set(policy.name, firstFire(timing, now));
      // the same object, changed in place: a cycle running across the reload records into it (a copy lost its notes and gone VMs)
      const state: PolicyState = old
        ? Object.assign(old, { when })
        : { name: policy.name, when, cycles: 0, skipped: 0, notes: [], gone: [] };
      const at = this.nextAt.get(policy.name);
      if (at === undefined) delete state.nextAt;
      else state.nextAt = seconds(at);
      return state;
    });
    const names = new Set(policies.map((p) => p.name));
    for (const name of this.nextAt.keys()) if (!names.has(name)) this.nextAt.delete(name);
    this.state.vms = this.state.vms.filter((v) => this.configured(v));
  }

  /** A record of a policy and target still configured (one of a target gone would show a lag that grows for ever). */
  private configured(v: VmTargetState): boolean {
    const policy = this.policies.find((p) => p.name === v.policy);
    return policy !== undefined && policyTargets(this.config, policy).some((t) => t.name === v.target);
  }

  private tick(): void {
    if (this.stopping) return;
    const now = this.now();
    for (const name of duePolicies(this.nextAt, now)) {
      const policy = this.policies.find((p) => p.name === name);
      const state = this.policyState(name);
      if (!policy || !state) continue;
      const { at, missed } = nextFire(timingOf(policy), this.nextAt.get(name)!, now);
      this.nextAt.set(name, at);
      if (at === undefined) delete state.nextAt;
      else state.nextAt = seconds(at);
      if (missed > 0) {
        // fires the loop could not start in time are counted as skipped cycles, never run late in a heap
        state.skipped += missed;
        this.deps.log.warn(`policy ${name}: ${missed} cycle(s) skipped: the service was held up past their time`);
      }
      const run = this.cycle(policy).then(() => undefined);
      this.cycles.add(run);
      void run.finally(() => this.cycles.delete(run));
      this.touch();
    }
    this.write(false);
  }

  private policyState(name: string): PolicyState | undefined {
    return this.state.policies.find((p) => p.name === name);
  }

  /** One cycle of one policy: select, skip the VMs still busy, back up the rest, record and report. */
  private async cycle(policy: Policy): Promise<VmBackupResult[]> {
    const config = this.config;
    const { log } = this.deps;
    const state = this.policyState(policy.name)!;
    state.cycles += 1;
    state.lastStartedAt = seconds(this.now());
    const notes: string[] = [];
    let logged = 0;
    let results: VmBackupResult[] = [];
    this.touch();
    try {
      const selector: VmSelector = {
        uuids: policy.vms.uuids,
        all: policy.vms.all,
        filters: policy.vms.filter,
        exclude: policy.vms.exclude,
      };
      const listed = await listVms(this.deps.local, selector.filters);
      const selection = selectVms(selector, listed);
      notes.push(...selection.notes);
      const present = selection.uuids.filter((u) => listed.some((vm) => vm.uuid === u));
      for (const u of selection.uuids)
        if (!present.includes(u)) notes.push(`VM ${u} is not on this host (vmadm lookup does not list it)`);
      const gone = disappeared(this.matched.get(policy.name) ?? [], present);
      for (const u of gone) {
        notes.push(`VM ${u} is gone since the last cycle (deleted, or no longer matched)`);
        if (!state.gone?.includes(u)) state.gone = [...(state.gone ?? []), u];
      }
      // said now, as the state file says it, not when the cycle's backups end
      for (const note of notes) log.warn(`policy ${policy.name}: ${note}`);
      logged = notes.length;
      // a VM gone, or one carried over from a previous run that this policy no longer selects, leaves the state
      this.state.vms = this.state.vms.filter(
        (v) => v.policy !== policy.name || v.running || (present.includes(v.uuid) && this.configured(v)),
      );
      this.matched.set(policy.name, present);
      state.matched = present.length;
      const { go, busy } = splitBusy(present, this.running);
      if (busy.length > 0) {
        state.skipped += busy.length;
        log.warn(
          `policy ${policy.name}: ${busy.length} VM(s) skipped, their previous cycle still runs: ${busy.join(' ')}`,
        );
      }
      state.vmCycles = (state.vmCycles ?? 0) + go.length;
      if (go.length > 0) results = await this.backUp(policy, config, go, listed);
    } catch (error) {
      notes.push(`cycle failed: ${(error as Error).message}`);
    } finally {
      state.notes = notes;
      state.lastFinishedAt = seconds(this.now());
      for (const note of notes.slice(logged)) log.warn(`policy ${policy.name}: ${note}`);
      this.touch();
    }
    await reportCycle(policy.name, results, notes, {
      config,
      log,
      mode: config.serviceEmail,
      previous: this.lastStatus,
    });
    this.write(true);
    return results;
  }

  private async backUp(
    policy: Policy,
    config: Config,
    uuids: string[],
    listed: readonly VmListing[],
  ): Promise<VmBackupResult[]> {
    // the VMs this cycle holds: each is let go when its result comes (another policy may take it then)
    const held = new Set(uuids);
    for (const u of uuids) this.running.add(u);
    try {
      const targets = policyTargets(config, policy);
      const settings = policySettings(config, policy, targets, this.deps.agentCommand);
      const targetOptions: TargetOptions = {
        local: this.deps.local,
        log: this.deps.log,
        print: (line) => this.deps.log.info(line),
        group: policy.group,
        // every policy's VMs may run at once over the one connection: each gets its share of its sessions
        // (kept with the targets across cycles, so it does not depend on this cycle's count of VMs)
        vmConcurrency: Math.min(16, config.vmConcurrency * this.policies.length),
      };
      const lease = await this.connections.lease(policy.name, targets, targetOptions);
      try {
        return await backupVms(uuids, {
          local: this.deps.local,
          log: this.deps.log,
          config,
          opened: lease.opened,
          targetOptions,
          settings,
          concurrency: Math.min(config.vmConcurrency, uuids.length),
          waits: imageFirsts(uuids, listed),
          onStart: (uuid) => this.started(policy, lease.opened, uuid, listed),
          onResult: (result) => {
            // the VM is free for the next cycle (of any policy) as soon as its own backup is done
            held.delete(result.uuid);
            this.running.delete(result.uuid);
            this.record(policy, lease.opened, result);
          },
        });
      } finally {
        await lease.release();
      }
    } finally {
      for (const u of held) this.running.delete(u);
    }
  }

  private vmState(policy: string, target: string, uuid: string, alias?: string): VmTargetState {
    let vm = this.state.vms.find((v) => v.policy === policy && v.target === target && v.uuid === uuid);
    if (!vm) {
      vm = { uuid, policy, target, running: false, bytesSentTotal: 0, failuresTotal: 0 };
      this.state.vms.push(vm);
    }
    if (alias !== undefined) vm.alias = alias;
    return vm;
  }

  private started(policy: Policy, opened: readonly OpenedTarget[], uuid: string, listed: readonly VmListing[]): void {
    const alias = listed.find((vm) => vm.uuid === uuid)?.alias;
    for (const o of opened) this.vmState(policy.name, o.name, uuid, alias).running = true;
    this.touch();
  }

  /** A VM's result, per target: its status, bytes, and the snapshot time the target now holds (for the RPO lag). */
  private record(policy: Policy, opened: readonly OpenedTarget[], result: VmBackupResult): void {
    const finished = result.finishedAt.getTime();
    for (const o of opened) {
      const vm = this.vmState(policy.name, o.name, result.uuid, result.alias);
      const rows = result.datasets.filter((d) => d.targetName === undefined || d.targetName === o.name);
      const status = o.error !== undefined ? 'failed' : runStatus(result.errors, rows);
      vm.running = false;
      vm.lastStatus = status;
      vm.lastDurationSeconds = (finished - result.startedAt.getTime()) / 1000;
      vm.bytesSentTotal += rows.reduce((sum, d) => sum + d.bytes, 0);
      if (status === 'success') {
        // the lag just before this snapshot arrived is the worst this interval reached
        if (vm.newestSnapshotAt !== undefined) lagSeen(vm, finished / 1000);
        vm.lastSuccessAt = seconds(finished);
        vm.successesTotal = (vm.successesTotal ?? 0) + 1;
        vm.newestSnapshotAt = snapshotTime(result, policy.group) / 1000;
        delete vm.lastError;
      } else {
        vm.failuresTotal += 1;
        vm.lastError = o.error ?? [...result.errors, ...rows.flatMap((d) => (d.error ? [d.error] : []))][0] ?? status;
      }
      lagSeen(vm, finished / 1000);
    }
    this.touch();
  }

  private touch(): void {
    this.dirty = true;
  }

  /** The state file, when something changed or the heartbeat is due (and always when forced). */
  private write(force: boolean): void {
    const now = this.now();
    const transfers = this.deps.transfers?.() ?? [];
    if (transfers.length > 0 || this.state.transfers.length > 0) this.dirty = true;
    if (!force && !this.dirty && now - this.lastWrite < HEARTBEAT_MS) return;
    this.state.heartbeat = seconds(now);
    this.state.transfers = transfers;
    for (const vm of this.state.vms) lagSeen(vm, now / 1000);
    try {
      this.deps.write(this.config.serviceStateFile, this.state);
      this.deps.onWrite?.(this.state);
    } catch (error) {
      this.deps.log.warn(`cannot write the state file ${this.config.serviceStateFile}: ${(error as Error).message}`);
    }
    this.dirty = false;
    this.lastWrite = now;
  }

  get stateFile(): string {
    return this.config.serviceStateFile;
  }

  get configNow(): Config {
    return this.config;
  }
}

/**
 * What a previous run knew that still holds: per VM and target, the newest snapshot there and the
 * last success (the counters start again at zero, as Prometheus expects).
 */
function carriedOver(previous: ServiceState | undefined): VmTargetState[] {
  return (previous?.vms ?? [])
    .filter((v) => v.newestSnapshotAt !== undefined)
    .map((v) => ({
      uuid: v.uuid,
      ...(v.alias !== undefined && { alias: v.alias }),
      policy: v.policy,
      target: v.target,
      running: false,
      bytesSentTotal: 0,
      failuresTotal: 0,
      newestSnapshotAt: v.newestSnapshotAt!,
      ...(v.lastSuccessAt !== undefined && { lastSuccessAt: v.lastSuccessAt }),
    }));
}

/** The RPO lag now, and the worst seen. */
function lagSeen(vm: VmTargetState, nowSeconds: number): void {
  if (vm.newestSnapshotAt === undefined) return;
  const lag = Math.max(0, Math.round((nowSeconds - vm.newestSnapshotAt) * 10) / 10);
  vm.rpoLagSeconds = lag;
  vm.rpoWorstSeconds = Math.max(vm.rpoWorstSeconds ?? 0, lag);
}

/** When the VM's snapshot was taken, from its name (`<group>-<ISO time>`), else when its run started. */
export function snapshotTime(result: Pick<VmBackupResult, 'snapshot' | 'startedAt'>, group: string): number {
  const stamp = result.snapshot?.startsWith(`${group}-`) ? Date.parse(result.snapshot.slice(group.length + 1)) : NaN;
  return Number.isNaN(stamp) ? result.startedAt.getTime() : stamp;
}

/** A policy's targets (all by default), its remoteRetention over each target's own. */
export function policyTargets(config: Config, policy: Policy): ResolvedTarget[] {
  const all = resolveTargets(config);
  const chosen = policy.targets
    ? all.filter((t) => policy.targets!.includes(t.name) || policy.targets!.includes(t.type))
    : all;
  return chosen.map((t) =>
    policy.remoteRetention === undefined
      ? t
      : { ...t, config: { ...t.config, remoteRetention: policy.remoteRetention } },
  );
}

/** A policy's backup settings: its group, and its localRetention over the top level's. */
export function policySettings(
  config: Config,
  policy: Policy,
  targets: readonly ResolvedTarget[],
  agentCommand?: string[],
): BackupSettings {
  const localRetention = policy.localRetention ?? config.localRetention;
  return runSettings({ ...config, localRetention }, policy.group, targets, { agentCommand });
}
