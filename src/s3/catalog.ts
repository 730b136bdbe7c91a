import { isSetKey, setKey, streamFromMetadata, vmPrefix, type SetManifest, type StoredStream } from './keys.js';
import type { ObjectStore } from './store.js';

/** Everything the bucket holds for one VM: its stream objects (with what they say of themselves) and its set manifests. */
export interface VmCatalog {
  vm: string;
  /** By key. Sizes are the stored sizes from the listing. */
  streams: Map<string, StoredStream & { size: number }>;
  /** Set manifests by snapshot name, oldest first by creation time. */
  sets: SetManifest[];
  /** Keys that are neither a readable stream nor a set manifest. */
  unknown: string[];
}

/**
 * One listing of the VM's prefix, the set manifests (which describe every stream a completed run
 * stored), and a HEAD only for streams no manifest names (a run that died before its manifest).
 */
export async function readCatalog(store: ObjectStore, prefix: string, vm: string): Promise<VmCatalog> {
  const objects = await store.list(vmPrefix(prefix, vm));
  const sizes = new Map(objects.map((o) => [o.key, o.size]));
  const sets: SetManifest[] = [];
  for (const o of objects.filter((o) => isSetKey(o.key))) {
    const text = await store.getText(o.key);
    try {
      if (text) sets.push(JSON.parse(text) as SetManifest);
    } catch {
      // an unreadable manifest is as good as none: its set is not offered for restore
    }
  }
  sets.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const streams = new Map<string, StoredStream & { size: number }>();
  for (const set of sets)
    for (const s of set.streams) if (sizes.has(s.key)) streams.set(s.key, { ...s, size: sizes.get(s.key)! });
  const unknown: string[] = [];
  for (const o of objects) {
    if (isSetKey(o.key) || streams.has(o.key)) continue;
    const head = await store.head(o.key);
    const stream = head ? streamFromMetadata(o.key, head.metadata) : undefined;
    if (stream) streams.set(o.key, { ...stream, size: o.size });
    else unknown.push(o.key);
  }
  return { vm, streams, sets, unknown };
}

export function streamsOf(catalog: VmCatalog, dataset: string): Array<StoredStream & { size: number }> {
  return [...catalog.streams.values()].filter((s) => s.dataset === dataset).sort((a, b) => a.createtxg - b.createtxg);
}

/**
 * The chain a stream needs, oldest first: parents followed by guid until a full stream, or a
 * clone's first stream whose parent is its origin (returned as `origin`, which must exist where it
 * is received). `missing` names the first parent the bucket lacks.
 */
export function chainOf(
  catalog: VmCatalog,
  stream: StoredStream,
): { chain: StoredStream[]; origin?: StoredStream['parent']; missing?: string } {
  const byGuid = new Map<string, StoredStream>();
  for (const s of catalog.streams.values()) byGuid.set(`${s.dataset}\n${s.guid}`, s);
  const chain: StoredStream[] = [stream];
  for (let s: StoredStream = stream; s.parent;) {
    const parent = byGuid.get(`${s.parent.dataset}\n${s.parent.guid}`);
    if (!parent) return { chain, missing: `${s.parent.dataset}@${s.parent.snapshot} (guid ${s.parent.guid})` };
    if (parent.dataset !== s.dataset) return { chain, origin: s.parent };
    chain.unshift(parent);
    s = parent;
    if (chain.length > 100_000) break;
  }
  return { chain };
}

export { setKey };
