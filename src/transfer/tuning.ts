import { availableParallelism } from 'node:os';

/**
 * How much runs at once, decided in one place from this host's CPU count and the backup host's
 * sshd MaxSessions, rather than constants tuned to one machine. Every stream over the run's one
 * SSH connection is a session, and sshd refuses sessions beyond MaxSessions (sshd_config(5)).
 */
export interface Tuning {
  /** Large streams in flight at once. */
  transfers: number;
  /** Streams in flight at once, small ones included. */
  streams: number;
  /** Series of small streams side by side (each one receive session). */
  seriesLanes: number;
}

/** sshd_config(5): MaxSessions defaults to 10. */
export const DEFAULT_MAX_SESSIONS = 10;
/** Sessions left for the run's control commands (listings, holds) while streams flow. */
const CONTROL_SESSIONS = 2;

export function tuning(
  settings: { transferConcurrency?: number; sshMaxSessions?: number },
  cpus: number = availableParallelism(),
): Tuning {
  // one ssh cipher and one zfs send per large stream each want a core; beyond 8 the pool's disks are the limit
  const sessions = Math.max(1, (settings.sshMaxSessions ?? DEFAULT_MAX_SESSIONS) - CONTROL_SESSIONS);
  const transfers = settings.transferConcurrency ?? Math.min(sessions, Math.max(4, Math.min(8, cpus)));
  // small streams cost process starts and a pool sync, not bandwidth: more of them at once, within the sessions
  const streams = Math.max(transfers, Math.min(sessions, transfers * 4));
  // a lane of small streams keeps about half a core busy (bench/README.md: four lanes filled two CPUs)
  const seriesLanes = Math.max(1, Math.min(streams, cpus * 2));
  return { transfers, streams, seriesLanes };
}
