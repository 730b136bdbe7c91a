/**
 * Ends a process group that outlived its time: SIGINT first (zlogin forwards only SIGINT to the
 * command's own process group inside the zone: illumos zlogin.c sig_forward), then SIGTERM, then
 * SIGKILL, each after a grace period, stopping as soon as the group is gone.
 */
export const GROUP_GRACE_MS = 1000;

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // ESRCH: nothing of the group is left
    return false;
  }
}

/** Resolves once the escalation has been sent (or the group is gone); `exited` ends it early. */
export async function endProcessGroup(pgid: number, exited: () => boolean, graceMs = GROUP_GRACE_MS): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    if (!signalGroup(pgid, signal)) return;
    for (let waited = 0; waited < graceMs; waited += 50) {
      if (exited() && !signalGroup(pgid, 0 as unknown as NodeJS.Signals)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
