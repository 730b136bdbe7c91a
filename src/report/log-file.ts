import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { renderText } from './render.js';
import type { VmBackupResult } from './types.js';

/** Appends the text report to `<logDirectory>/zonecopy-<uuid>.log`; returns the path or the error. */
export function appendRunLog(logDirectory: string, result: VmBackupResult): string | { error: string } {
  const path = join(logDirectory, `zonecopy-${result.uuid}.log`);
  try {
    mkdirSync(logDirectory, { recursive: true });
    appendFileSync(path, `=== ${result.finishedAt.toISOString()} ${result.status}\n${renderText(result)}\n\n`);
    return path;
  } catch (error) {
    return { error: `cannot write the log ${path} (logDirectory): ${(error as Error).message}` };
  }
}
