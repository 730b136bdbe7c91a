import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One run per VM at a time: a lock file per VM on the SmartOS host holding the owner's pid. A
 * lock whose process is gone is stale and taken over; the takeover renames it away first, so of
 * two runs that both find it stale only one wins.
 */

export class LockedError extends Error {
  override name = 'LockedError';
}

export interface VmLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The lock file appears with its content in one step (written aside, then hard-linked into place),
 * so another run never reads an empty lock and mistakes a live owner for a stale one.
 */
function tryAcquire(path: string): VmLock | { holder: number; since: string } {
  const draft = `${path}.${process.pid}.new`;
  writeFileSync(draft, `${process.pid}\n${new Date().toISOString()}\n`, { mode: 0o644 });
  try {
    linkSync(draft, path);
    return {
      release: () => {
        try {
          if (readFileSync(path, 'utf8').split('\n')[0] === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      },
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(draft, { force: true });
  }
  let content = '';
  try {
    content = readFileSync(path, 'utf8');
  } catch {
    return { holder: 0, since: '' };
  }
  const [pid, since] = content.split('\n');
  const holder = Number(pid);
  if (Number.isInteger(holder) && holder > 0 && alive(holder)) return { holder, since: since ?? '' };
  takeOverStale(path, content);
  return { holder: 0, since: '' };
}

/**
 * Moves a stale lock away. If another run replaced it between our read and the rename, what we
 * moved is that run's live lock: it goes back into place (unless a third run got there first).
 */
function takeOverStale(path: string, staleContent: string): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // another run took it over first
  }
  try {
    if (readFileSync(aside, 'utf8') !== staleContent) linkSync(aside, path);
  } catch {
    // the lock went back, or a third run holds it now: either way one owner
  } finally {
    rmSync(aside, { force: true });
  }
}

export async function lockVm(
  directory: string,
  uuid: string,
  options: { wait: boolean; pollMs?: number },
): Promise<VmLock> {
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `${uuid}.lock`);
  for (;;) {
    const attempt = tryAcquire(path);
    if ('release' in attempt) return attempt;
    if (attempt.holder === 0) continue;
    if (!options.wait) {
      throw new LockedError(
        `another zonecopy run (pid ${attempt.holder}, since ${attempt.since}) is backing up VM ${uuid}; not starting a second one. Use --wait to wait for it (lock: ${path}).`,
      );
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
  }
}
