import { consistencyLine, type ConsistencyRecord } from '../backup/hook-run.js';
import type { Host } from '../host/host.js';

/**
 * A backup set's consistency record as stored beside its VM spec (`<snapshot>.consistency` on the
 * backup host, `consistency` in an object-storage set manifest), read back for status and
 * `restore --list`.
 */

export const CONSISTENCY_SUFFIX = '.consistency';

/** What is shown for a set: its record's line, or why there is none. */
export function consistencyText(record: ConsistencyRecord | undefined): string {
  return record ? consistencyLine(record) : 'not recorded (stored before zonecopy recorded consistency)';
}

export function parseConsistency(text: string | undefined): ConsistencyRecord | undefined {
  if (!text) return undefined;
  try {
    const record = JSON.parse(text) as ConsistencyRecord;
    return record && typeof record === 'object' && Array.isArray(record.hooks) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The record of `<directory>/<snapshot>.consistency` on the backup host, if there is one. */
export async function readStoredConsistency(
  remote: Host,
  directory: string,
  snapshot: string,
): Promise<ConsistencyRecord | undefined> {
  const read = await remote.run(['cat', `${directory}/${snapshot}${CONSISTENCY_SUFFIX}`], {
    mutates: false,
    allowExitCodes: [1, 2],
  });
  return read.exitCode === 0 ? parseConsistency(read.stdout) : undefined;
}
