const PREFIXES = ['', 'K', 'M', 'G', 'T', 'P'];

/** `1.50` and `G` to bytes: the binary prefixes mbuffer and zfs print (mbuffer writes a small k). */
export function scaledBytes(value: string, prefix: string): number {
  return Math.round(Number(value) * 1024 ** PREFIXES.indexOf(prefix.toUpperCase()));
}
