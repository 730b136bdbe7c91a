import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * A test file's temporary directories: one directory in the system's temp folder, removed (with
 * everything made in it) when the file's tests have ended, passed or failed, so a run leaves
 * nothing in /tmp. Call it at module level; each call of the result makes a fresh subdirectory.
 */
export function scratchDirectory(prefix: string): () => string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(root, { recursive: true, force: true }));
  return () => mkdtempSync(join(root, 'd-'));
}
