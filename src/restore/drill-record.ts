import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the last drill of each VM is kept: /var/zonecopy, zonecopy's local state on this host
 * (the object store's upload journals default to /var/zonecopy/s3-uploads), lasts a SmartOS reboot.
 */
export const DRILL_DIRECTORY = '/var/zonecopy/drills';

/** How one dataset of the set fared: its content compared with this host's snapshot, or by guid only. */
export interface DrilledDataset {
  source: string;
  type: 'filesystem' | 'volume';
  /** same: guid and content match; guid-only: no snapshot of the set here to compare content with; differs / failed: see `note`. */
  check: 'same' | 'guid-only' | 'differs' | 'failed';
  note?: string;
  bytes: number;
}

/** The last drill of one VM, as `zonecopy check` and the backup report show it. */
export interface DrillRecord {
  vm: string;
  alias?: string;
  /** When the drill ended (ISO 8601). */
  at: string;
  target: string;
  snapshot: string;
  result: 'ok' | 'failed';
  /** What differed or failed, one line each (empty when ok). */
  problems: string[];
  /** Seconds from the start until every dataset was received: the time a restore of this set takes. */
  rtoSeconds: number;
  /** Seconds of the whole drill, checks and clean-up included. */
  seconds: number;
  /** Bytes received. */
  bytes: number;
  datasets: DrilledDataset[];
}

export function drillRecordPath(directory: string, uuid: string): string {
  return join(directory, `${uuid}.json`);
}

/** Replaces the VM's record whole (written beside, then renamed), so a reader never sees half of one. */
export function writeDrillRecord(directory: string, record: DrillRecord): string {
  mkdirSync(directory, { recursive: true });
  const path = drillRecordPath(directory, record.vm);
  const partial = `${path}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(partial, path);
  return path;
}

/** The VM's last drill; undefined when it was never drilled (or its record cannot be read). */
export function readDrillRecord(directory: string, uuid: string): DrillRecord | undefined {
  let text: string;
  try {
    text = readFileSync(drillRecordPath(directory, uuid), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const record = JSON.parse(text) as Partial<DrillRecord>;
    return record.vm === uuid && typeof record.at === 'string' && (record.result === 'ok' || record.result === 'failed')
      ? (record as DrillRecord)
      : undefined;
  } catch {
    return undefined;
  }
}
