/** ZFS names, compared structurally (by components), never by string prefix. */

const COMPONENT = /^[A-Za-z0-9_.:-]+$/;

export function isValidDatasetName(name: string): boolean {
  return name.split('/').every((part) => COMPONENT.test(part) && part !== '.' && part !== '..');
}

export function isValidSnapshotPart(name: string): boolean {
  return COMPONENT.test(name) && name.length <= 200;
}

export function splitSnapshot(full: string): { dataset: string; snapshot: string } {
  const at = full.indexOf('@');
  if (at < 0) throw new Error(`not a snapshot name: ${full}`);
  return { dataset: full.slice(0, at), snapshot: full.slice(at + 1) };
}

export function poolOf(dataset: string): string {
  return dataset.split('/')[0]!;
}

export function parentOf(dataset: string): string | undefined {
  const slash = dataset.lastIndexOf('/');
  return slash < 0 ? undefined : dataset.slice(0, slash);
}

/** True when `child` is `ancestor` itself or lies below it (`zones` is not an ancestor of `zones2/x`). */
export function isWithin(child: string, ancestor: string): boolean {
  const a = ancestor.split('/');
  const c = child.split('/');
  return a.length <= c.length && a.every((part, i) => c[i] === part);
}

/** `zones/<uuid>/data` under base `backup/zones` is `backup/zones/<uuid>/data`. */
export function targetDatasetName(basePath: string, source: string): string {
  const rest = source.split('/').slice(1);
  return [basePath, ...rest].join('/');
}

export function depth(dataset: string): number {
  return dataset.split('/').length;
}
