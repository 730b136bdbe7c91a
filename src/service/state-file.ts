import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SERVICE_STATE_VERSION, type ServiceState } from './state.js';

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

export type StateRead = { state: ServiceState } | { missing: true; error: string } | { missing: false; error: string };

/** The state file, or why it cannot be read: missing (no service has run here) or unreadable. */
export async function readServiceState(file: string): Promise<StateRead> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { missing: true, error: `no service state file ${file}: zonecopy serve is not running on this host` };
    return { missing: false, error: `cannot read the service state file ${file}: ${(error as Error).message}` };
  }
  try {
    const state = JSON.parse(text) as ServiceState;
    if (state.version !== SERVICE_STATE_VERSION || typeof state.heartbeat !== 'number')
      return {
        missing: false,
        error: `the service state file ${file} is not one this zonecopy reads (version ${String(state.version)}, expected ${SERVICE_STATE_VERSION})`,
      };
    return {
      state: { ...state, policies: state.policies ?? [], vms: state.vms ?? [], transfers: state.transfers ?? [] },
    };
  } catch (error) {
    return { missing: false, error: `the service state file ${file} is not JSON: ${(error as Error).message}` };
  }
}
