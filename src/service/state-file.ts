import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ServiceState } from './state.js';

/**
 * Writes the state file whole: into a temporary file beside it, then renamed over it, so a reader
 * (`status --watch`, `check`) never sees half a file. Synchronous: it is small, and a write begun
 * just before exit must not be cut off.
 */
export function writeStateFile(path: string, state: ServiceState): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // nothing was written
    }
    throw error;
  }
}
