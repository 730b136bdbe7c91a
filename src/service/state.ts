/**
 * What `zonecopy serve` is doing, as it writes it to its state file (serviceStateFile, JSON) after
 * every change and at least every few seconds: `status --watch` draws it, `check` reads its
 * heartbeat, and the Prometheus metrics are rendered from it. Times are Unix seconds.
 */
export interface ServiceState {
  /** Format of this file; bumped when a field changes meaning. */
  version: 1;
  pid: number;
  startedAt: number;
  /** Last time the scheduler loop ran: a service that stopped cycling has an old heartbeat. */
  heartbeat: number;
  /** Set when it stopped on a signal (or after --once): the heartbeat is old because it was stopped. */
  stoppedAt?: number;
  /** Where the configuration came from and when it was last (re)loaded; a refused reload says why. */
  config: { path: string; loadedAt: number; reloadError?: string };
  policies: PolicyState[];
  /** Per VM and target. */
  vms: VmTargetState[];
  /** Streams in flight now. */
  transfers: TransferState[];
  /** SSH connections made to backup hosts since the start: the first per host, then one per reconnect. */
  connects?: number;
}

export interface PolicyState {
  name: string;
  /** `every 15s` or `schedule 0 3 * * *`, as configured. */
  when: string;
  /** Cycles started, and cycles skipped because the previous one of a VM was still running. */
  cycles: number;
  skipped: number;
  lastStartedAt?: number;
  lastFinishedAt?: number;
  nextAt?: number;
  /** The selector matched no VM at its last cycle, or a VM it had matched is gone: said here. */
  notes: string[];
  /** VMs its last cycle selected. */
  matched?: number;
  /** VM backups its cycles started (a cycle of three VMs is three); each ends as a success or a failure of its VM. */
  vmCycles?: number;
  /** VMs it had matched that have gone since the service started (deleted, or no longer matched), by UUID. */
  gone?: string[];
}

export interface VmTargetState {
  uuid: string;
  alias?: string;
  policy: string;
  target: string;
  /** A cycle of this VM is running now. */
  running: boolean;
  lastStatus?: 'success' | 'partial' | 'failed';
  lastSuccessAt?: number;
  /** Wall seconds of its last cycle. */
  lastDurationSeconds?: number;
  /** Snapshot time (taken at) of the newest snapshot this target holds of the VM; carried over from the previous run's state file at a start. */
  newestSnapshotAt?: number;
  bytesSentTotal: number;
  failuresTotal: number;
  /** Cycles of this VM to this target that succeeded. */
  successesTotal?: number;
  /** now − newestSnapshotAt when written: the data an operator would lose now. */
  rpoLagSeconds?: number;
  /** The worst RPO lag seen since the service started. */
  rpoWorstSeconds?: number;
  lastError?: string;
}

export interface TransferState {
  uuid: string;
  dataset: string;
  target: string;
  startedAt: number;
  bytes: number;
  /** `zfs send -nP` estimate of the stream, when known. */
  estimatedBytes?: number;
}

export const SERVICE_STATE_VERSION = 1;
