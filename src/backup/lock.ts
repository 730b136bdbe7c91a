import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
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

function tryAcquire(path: string): VmLock | { holder: number; since: string } {
  try {
    const fd = openSync(path, 'wx', 0o644);
    writeSync(fd, `${process.pid}\n${new Date().toISOString()}\n`);
    closeSync(fd);
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
  try {
    renameSync(path, `${path}.stale-${process.pid}`);
    unlinkSync(`${path}.stale-${process.pid}`);
  } catch {
    // another run took it over first
  }
  return { holder: 0, since: '' };
}

export async function lockVm(directory: string, uuid: string, options: { wait: boolean; pollMs?: number }): Promise<VmLock> {
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `${uuid}.lock`);
  for (;;) {
    const attempt = tryAcquire(path);
    if ('release' in attempt) return attempt;
    if (attempt.holder === 0) continue;
    if (!options.wait) {
      throw new LockedError(`another zonecopy run (pid ${attempt.holder}, since ${attempt.since}) is backing up VM ${uuid}; not starting a second one. Use --wait to wait for it (lock: ${path}).`);
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
  }
}
