import { linkSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One run per VM at a time: a lock file per VM on the SmartOS host holding the owner's pid. A
 * lock whose process is gone is stale and taken over, one takeover at a time, so of the runs that
 * find it stale only one wins.
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
 * Removes a stale lock. Takeovers go one at a time through a breaker file (made as the lock is, by
 * a hard link that fails if it exists): while it is held nobody else removes a lock, the dead owner
 * cannot, and a new owner cannot link over it, so the lock read under it is the one unlinked. (Moving
 * the lock aside instead let a third run slip in while it was away, and two runs held it.)
 */
function takeOverStale(path: string, staleContent: string): void {
  const breaker = `${path}.break`;
  const draft = `${breaker}.${process.pid}`;
  writeFileSync(draft, `${process.pid}\n`, { mode: 0o644 });
  try {
    linkSync(draft, breaker);
  } catch {
    clearAbandonedBreaker(breaker);
    return; // another run is taking it over: try again
  } finally {
    rmSync(draft, { force: true });
  }
  try {
    if (readFileSync(path, 'utf8') === staleContent) unlinkSync(path);
  } catch {
    // already gone
  } finally {
    rmSync(breaker, { force: true });
  }
}

/** A breaker is held for a moment; one this old was left by a run killed while holding it. */
function clearAbandonedBreaker(breaker: string): void {
  try {
    if (Date.now() - statSync(breaker).mtimeMs > BREAKER_ABANDONED_MS) rmSync(breaker, { force: true });
  } catch {
    // gone meanwhile
  }
}

const BREAKER_ABANDONED_MS = 10_000;

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
    // taken over just now, or being taken over: try again in a moment
    if (attempt.holder === 0) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    if (!options.wait) {
      throw new LockedError(
        `another zonecopy run (pid ${attempt.holder}, since ${attempt.since}) is backing up VM ${uuid}; not starting a second one. Use --wait to wait for it (lock: ${path}).`,
      );
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
  }
}
