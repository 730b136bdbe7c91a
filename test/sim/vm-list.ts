/** vmadm list / lookup: the matcher (key=value, key=~regex) and list's fixed-width table. */
import { VmadmError } from './vm-lifecycle.js';

/** Column widths and headers as in vmadm.js LIST_FIELDS. */
const LIST_FIELDS: Record<string, { header: string; width: number }> = {
  uuid: { header: 'UUID', width: 36 },
  type: { header: 'TYPE', width: 4 },
  ram: { header: 'RAM', width: 7 },
  state: { header: 'STATE', width: 16 },
  alias: { header: 'ALIAS', width: 10 },
  brand: { header: 'BRAND', width: 14 },
  quota: { header: 'QUOTA', width: 5 },
  zonepath: { header: 'ZONEPATH', width: 40 },
  zpool: { header: 'ZPOOL', width: 12 },
  image_uuid: { header: 'IMAGE_UUID', width: 36 },
  create_timestamp: { header: 'CREATE_TIMESTAMP', width: 24 },
  owner_uuid: { header: 'OWNER_UUID', width: 36 },
  cpu_shares: { header: 'CPU_SHARE', width: 9 },
  zfs_io_priority: { header: 'IO_PRIORITY', width: 11 },
  max_physical_memory: { header: 'MAX_PHYS', width: 8 },
  hostname: { header: 'HOSTNAME', width: 32 },
  autoboot: { header: 'AUTOBOOT', width: 8 },
  zonename: { header: 'ZONENAME', width: 36 },
};
const NESTED =
  /^(disks\.(\d+|\*)\.(boot|image_name|image_size|image_uuid|size|media|model|zpool)|nics\.(\d+|\*)\.\w+|(tags|customer_metadata|internal_metadata)\.[^.]+)$/;

export function isFilterKey(key: string): boolean {
  return key in LIST_FIELDS || NESTED.test(key);
}

function values(object: unknown, path: string[]): unknown[] {
  if (path.length === 0) return [object];
  const [head, ...rest] = path;
  if (Array.isArray(object) && head === '*') return object.flatMap((item) => values(item, rest));
  if (object && typeof object === 'object') return values((object as Record<string, unknown>)[head!], rest);
  return [];
}

export interface Filter {
  key: string;
  test: (value: unknown) => boolean;
}

export function parseFilters(args: readonly string[], invalid: (key: string) => string): Filter[] {
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new VmadmError(invalid(arg));
    const key = arg.slice(0, eq);
    if (!isFilterKey(key)) throw new VmadmError(invalid(key));
    const target = arg.slice(eq + 1);
    if (target.startsWith('~')) {
      const regex = new RegExp(target.slice(1), 'i');
      return { key, test: (v) => v !== undefined && regex.test(String(v)) };
    }
    return { key, test: (v) => v !== undefined && v !== null && String(v) === target };
  });
}

export function matches(object: Record<string, unknown>, filters: readonly Filter[]): boolean {
  return filters.every((f) => values(object, f.key.split('.')).some((v) => f.test(v)));
}

export function checkOrderFields(fields: readonly string[]): void {
  for (const f of fields) {
    if (f.includes('*')) throw new VmadmError(`Invalid order key: "${f}"`);
    if (!(f in LIST_FIELDS)) throw new VmadmError(`invalid order field: ${f}`);
  }
}

export function sortObjects(objects: Array<Record<string, unknown>>, sortFields: readonly string[]): void {
  objects.sort((a, b) => {
    for (const raw of sortFields) {
      const descending = raw.startsWith('-');
      const field = raw.replace(/^[-+]/, '');
      const x = a[field];
      const y = b[field];
      const order =
        typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
      if (order !== 0) return descending ? -order : order;
    }
    return 0;
  });
}

export function formatTable(
  objects: Array<Record<string, unknown>>,
  fields: readonly string[],
  options: { parsable: boolean; header: boolean },
): string {
  const cell = (o: Record<string, unknown>, f: string) =>
    o[f] === undefined || o[f] === null ? (options.parsable ? '' : '-') : String(o[f]);
  if (options.parsable)
    return objects.map((o) => fields.map((f) => cell(o, f)).join(':')).join('\n') + (objects.length ? '\n' : '');
  const row = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(LIST_FIELDS[fields[i]!]!.width))
      .join('  ')
      .trimEnd();
  const lines = objects.map((o) => row(fields.map((f) => cell(o, f))));
  if (options.header) lines.unshift(row(fields.map((f) => LIST_FIELDS[f]!.header)));
  return lines.join('\n') + '\n';
}
