import type { Config } from '../config/schema.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import type { VmBackupResult } from '../report/types.js';
import { vmadmGet, vmLabels, type VmSpecWithRaw } from '../smartos/vmadm.js';
import type { Target } from '../target/target.js';
import { backupVm, type BackupSettings } from './backup-vm.js';
import { lockVm, type VmLock } from './lock.js';
import { holdTag, unreachable, type OpenedTarget, type TargetOptions } from './open-targets.js';

export interface VmsRun {
  local: Host;
  log: Log;
  config: Config;
  /** The run's targets, opened (or not) once for all its VMs. */
  opened: readonly OpenedTarget[];
  targetOptions: Pick<TargetOptions, 'group' | 'holds'>;
  settings: BackupSettings;
  /** --wait: wait for another run's lock on a VM instead of failing it. */
  wait?: boolean;
  /** VMs side by side (vmConcurrency). */
  concurrency: number;
  /** Which VMs must be done before each may start (selectVms' imageFirsts). */
  waits?: ReadonlyMap<string, readonly string[]>;
  /** The first VM's `vmadm get`, started during the SSH handshakes. */
  firstSpec?: Promise<VmSpecWithRaw>;
  /** Called as each VM starts and ends (the service counts and exposes them). */
  onStart?: (uuid: string) => void;
  onResult?: (result: VmBackupResult) => void;
}

/**
 * Backs up the VMs over targets already opened: each VM under its own lock, up to `concurrency`
 * at once, a VM never before the ones it waits for; results in the VMs' order.
 */
export async function backupVms(uuids: readonly string[], run: VmsRun): Promise<VmBackupResult[]> {
  const { opened, settings, local, log, config } = run;
  const usable = opened.filter((o) => o.target);
  // with snapshotWhenTargetsDown (the default) a run whose targets are all down still snapshots
  // and thins here; a target refused for its configuration (key, program, gpg) stops the run first
  const down = settings.snapshotWhenTargetsDown && opened.length > 0 && opened.every((o) => o.down);
  if (usable.length === 0 && !down) {
    const why = opened.map((o) => (opened.length > 1 ? `${o.name}: ${o.error}` : o.error!));
    const labels = opened.map((o) => o.label).join(', ');
    const results = await failedBeforeStart(uuids, why, labels, local, run.firstSpec);
    for (const r of results) run.onResult?.(r);
    return results;
  }
  const targets: Target[] = opened.map((o) => o.target ?? unreachable(o, holdTag(o.config, run.targetOptions, o.name)));
  const labels = targets.map((t) => t.label).join(', ');
  const one = async (uuid: string, index: number): Promise<VmBackupResult> => {
    log.verbose(`backing up VM ${uuid} to ${labels}`);
    run.onStart?.(uuid);
    const result = await withVmLock(uuid, config.lockDirectory, Boolean(run.wait), labels, local, () =>
      backupVm(uuid, settings, {
        local,
        targets,
        log,
        now: () => new Date(),
        spec: index === 0 ? run.firstSpec : undefined,
      }),
    );
    run.onResult?.(result);
    return result;
  };
  return inPool(uuids, Math.max(1, run.concurrency), run.waits ?? new Map(), one);
}

/**
 * Runs task for each item, at most `size` at once, in order except that an item starts only once
 * the items it waits for are done (pure scheduling, no I/O of its own).
 */
export async function inPool<R>(
  items: readonly string[],
  size: number,
  waits: ReadonlyMap<string, readonly string[]>,
  task: (item: string, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  const done = new Set<string>();
  const pending = items.map((item, index) => ({ item, index }));
  let running = 0;
  return new Promise((resolve, reject) => {
    const ready = (item: string) => (waits.get(item) ?? []).every((w) => done.has(w) || !items.includes(w));
    const next = () => {
      if (pending.length === 0 && running === 0) return resolve(results);
      while (running < size) {
        const at = pending.findIndex((p) => ready(p.item));
        if (at < 0) break;
        const [{ item, index }] = pending.splice(at, 1) as [{ item: string; index: number }];
        running++;
        task(item, index).then(
          (result) => {
            results[index] = result;
            done.add(item);
            running--;
            next();
          },
          (error: unknown) => reject(error as Error),
        );
      }
    };
    next();
  });
}

/** Every VM's result when the run stops before the first of them (no connection, a program missing), each named as vmadm knows it. */
async function failedBeforeStart(
  uuids: readonly string[],
  errors: string[],
  backupHost: string,
  local: Host,
  firstSpec?: Promise<VmSpecWithRaw>,
): Promise<VmBackupResult[]> {
  const now = new Date();
  const labels = await vmLabels(local, uuids, firstSpec ? new Map([[uuids[0]!, firstSpec]]) : undefined);
  return uuids.map((uuid) => ({
    uuid,
    ...labels.get(uuid),
    backupHost,
    startedAt: now,
    finishedAt: now,
    status: 'failed',
    datasets: [],
    errors: [...errors],
    dryRun: local.dryRun,
  }));
}

/** One run per VM at a time: a second one fails with the lock's message, or waits with --wait. */
async function withVmLock(
  uuid: string,
  lockDirectory: string,
  wait: boolean,
  backupHost: string,
  local: Host,
  run: () => Promise<VmBackupResult>,
): Promise<VmBackupResult> {
  let lock: VmLock;
  try {
    lock = await lockVm(lockDirectory, uuid, { wait });
  } catch (error) {
    const now = new Date();
    return {
      uuid,
      backupHost,
      startedAt: now,
      finishedAt: now,
      status: 'failed',
      datasets: [],
      errors: [(error as Error).message],
      dryRun: local.dryRun,
    };
  }
  try {
    return await run();
  } finally {
    lock.release();
  }
}

/** Starts the first VM's `vmadm get` early; its error, if any, is reported where the spec is used. */
export function earlySpec(local: Host, uuid: string | undefined): Promise<VmSpecWithRaw> | undefined {
  const spec = uuid ? vmadmGet(local, uuid) : undefined;
  spec?.catch(() => undefined);
  return spec;
}
