import type { ConsistencyRecord } from '../backup/hook-run.js';
import { splitSnapshot } from '../zfs/names.js';

/**
 * Where things live in the bucket, and what each stream object says about itself. One object per
 * snapshot stream: `<prefix>/<vm>/<dataset without pool>/<snapshot>`; the set manifests (VM spec
 * and the streams of one run) under `<prefix>/<vm>/@sets/`, a name no dataset can have.
 */

export interface StoredStream {
  key: string;
  /** Source dataset (with its pool) and snapshot name. */
  dataset: string;
  snapshot: string;
  guid: string;
  createtxg: number;
  /** The snapshot this stream is incremental from (same dataset, or a clone's origin); absent for a full stream. */
  parent?: { dataset: string; snapshot: string; guid: string };
  vm: string;
  compression: Compression;
  encrypted: boolean;
  /** Stored bytes and their sha256, known once the upload completed (absent on an object whose run died before). */
  bytes?: number;
  sha256?: string;
}

export type Compression = 'zstd' | 'gzip' | 'none';

export interface SetManifest {
  format: 1;
  vm: string;
  snapshot: string;
  createdAt: string;
  /** `vmadm get` output as printed. */
  spec: string;
  zonecfg?: string;
  images: Array<Record<string, unknown>>;
  /** The VM's datasets in vmadm order, then children below them. */
  datasets: string[];
  /** Every stream this run stored (origins included). */
  streams: StoredStream[];
  /** The hooks that ran around the snapshot and how consistent it is (absent in sets stored before hooks). */
  consistency?: ConsistencyRecord;
}

export function vmPrefix(prefix: string, vm: string): string {
  return `${prefix}/${vm}/`;
}

export function streamKey(prefix: string, vm: string, dataset: string, snapshot: string): string {
  const slash = dataset.indexOf('/');
  return `${vmPrefix(prefix, vm)}${slash < 0 ? dataset : dataset.slice(slash + 1)}/${snapshot}`;
}

export function setKey(prefix: string, vm: string, snapshot: string): string {
  return `${vmPrefix(prefix, vm)}@sets/${snapshot}.json`;
}

export function isSetKey(key: string): boolean {
  return key.includes('/@sets/') && key.endsWith('.json');
}

/** S3 user metadata is ASCII headers: values are URI-encoded. */
export function streamMetadata(s: StoredStream): Record<string, string> {
  const m: Record<string, string> = {
    'zc-dataset': s.dataset,
    'zc-snapshot': s.snapshot,
    'zc-guid': s.guid,
    'zc-createtxg': String(s.createtxg),
    'zc-parent': s.parent ? `${s.parent.dataset}@${s.parent.snapshot}` : '',
    'zc-parent-guid': s.parent?.guid ?? '',
    'zc-vm': s.vm,
    'zc-compression': s.compression,
    'zc-encryption': s.encrypted ? 'gpg' : 'none',
  };
  if (s.bytes !== undefined) m['zc-bytes'] = String(s.bytes);
  if (s.sha256 !== undefined) m['zc-sha256'] = s.sha256;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, encodeURIComponent(v)]));
}

export function streamFromMetadata(key: string, raw: Record<string, string>): StoredStream | undefined {
  const m = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), safeDecode(v)]));
  if (!m['zc-dataset'] || !m['zc-snapshot'] || !m['zc-guid']) return undefined;
  const parent = m['zc-parent'] ? splitSnapshot(m['zc-parent']) : undefined;
  return {
    key,
    dataset: m['zc-dataset'],
    snapshot: m['zc-snapshot'],
    guid: m['zc-guid'],
    createtxg: Number(m['zc-createtxg'] ?? 0),
    parent: parent
      ? { dataset: parent.dataset, snapshot: parent.snapshot, guid: m['zc-parent-guid'] ?? '' }
      : undefined,
    vm: m['zc-vm'] ?? '',
    compression: (m['zc-compression'] as Compression | undefined) ?? 'none',
    encrypted: m['zc-encryption'] === 'gpg',
    bytes: m['zc-bytes'] ? Number(m['zc-bytes']) : undefined,
    sha256: m['zc-sha256'] || undefined,
  };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
