import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';

/**
 * Checksums a drill compares, computed by a command on the host that holds the data: the SmartOS
 * global zone has `digest` but no `sha256sum`, a Linux host `sha256sum` or at least `openssl`, so
 * the scripts pick whichever is there. Paths reach them as arguments (`sh -c SCRIPT sh PATH`), never inside the text.
 */

/**
 * sha256 with whichever tool the host has (as the installer picks it): `$sum FILE...` names each
 * file, `$total` reads stdin; their output differs by tool, but both sides of a comparison use the same.
 */
const PICK_SUM = [
  'if command -v digest >/dev/null 2>&1; then sum="digest -v -a sha256"; total="digest -a sha256"',
  'elif command -v sha256sum >/dev/null 2>&1; then sum=sha256sum; total=sha256sum',
  'elif command -v openssl >/dev/null 2>&1; then sum="openssl dgst -sha256"; total="openssl dgst -sha256"',
  'else echo "no sha256 tool (digest, sha256sum or openssl)" >&2; exit 1; fi',
].join('; ');

/**
 * `ls -dn` without its three date fields (they print differently as time passes) and without the
 * padding ls gives a column (it depends on the other names of the batch): mode, links, uid, gid, size, name.
 */
const WITHOUT_DATE = `s/^\\([^ ][^ ]*\\)  *\\([^ ][^ ]*\\)  *\\([^ ][^ ]*\\)  *\\([^ ][^ ]*\\)  *\\([^ ][^ ]*\\)  *[^ ][^ ]*  *[^ ][^ ]*  *[^ ][^ ]* /\\1 \\2 \\3 \\4 \\5 /`;

/** Every entry below `.` on this file system, without a snapshot directory a `snapdir=visible` would show. */
const FIND = 'find . -xdev -name .zfs -prune -o';

/**
 * One line of sh: the number of entries below "$1", then the sha256 of the sorted lines of every
 * entry's type, mode, links, owner, size and name (`ls -dn`, symlink targets included) and every
 * regular file's content digest (with its name). Sorting makes it independent of the order the
 * directories are read in; anything written to stderr (an unreadable file) makes it untrusted.
 */
export const TREE_SCRIPT = [
  'set -f',
  'LC_ALL=C',
  'export LC_ALL',
  PICK_SUM,
  'cd "$1" || exit 1',
  `entries=$(${FIND} -print | wc -l) || exit 1`,
  'echo "entries $entries"',
  `{ ${FIND} -exec ls -dn {} + | sed '${WITHOUT_DATE}'; ${FIND} -type f -exec $sum {} +; } | sort | $total`,
].join('; ');

/**
 * One line of sh: the sha256 of every byte of the block device "$1", waiting up to 30 s for it to
 * appear (Linux's udev links a new volume's device a moment after ZFS made it).
 */
export const VOLUME_SCRIPT = [
  'set -f',
  'LC_ALL=C',
  'export LC_ALL',
  PICK_SUM,
  'i=0',
  'while [ ! -e "$1" ]; do i=$((i + 1)); if [ "$i" -gt 30 ]; then echo "$1: no such device after 30 s" >&2; exit 1; fi; sleep 1; done',
  '$total < "$1"',
].join('; ');

export function treeChecksumArgv(directory: string): Argv {
  return ['sh', '-c', TREE_SCRIPT, 'sh', directory];
}

export function volumeChecksumArgv(device: string): Argv {
  return ['sh', '-c', VOLUME_SCRIPT, 'sh', device];
}

export interface Checksum {
  sha256: string;
  /** Entries of a file tree (absent for a volume). */
  entries?: number;
}

/** The digest (and entry count) a script printed; an error when it printed anything else, or to stderr. */
export function parseChecksum(stdout: string, stderr: string, what: string): Checksum {
  const hex = /(?:^|\s)([0-9a-f]{64})(?:\s|$)/.exec(stdout)?.[1];
  if (!hex || stderr.trim())
    throw new Error(`checksum of ${what} failed: ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no digest'}`);
  const entries = /^entries\s+(\d+)\s*$/m.exec(stdout)?.[1];
  return { sha256: hex, ...(entries ? { entries: Number(entries) } : {}) };
}

/** Runs the checksum of a mounted file tree or of a volume's device on `host`; reads only. */
export async function checksumOn(host: Host, kind: 'tree' | 'volume', path: string, what: string): Promise<Checksum> {
  const argv = kind === 'tree' ? treeChecksumArgv(path) : volumeChecksumArgv(path);
  const out = await host.run(argv, { mutates: false, allowExitCodes: [1, 2] });
  if (out.exitCode !== 0)
    throw new Error(`checksum of ${what} failed: ${out.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return parseChecksum(out.stdout, out.stderr, what);
}

/** A volume's block device: illumos names it under dsk/ (rdsk/ raw), Linux's udev links the name itself. */
export async function volumeDevice(host: Host, volume: string): Promise<string> {
  if (!systems.has(host))
    systems.set(
      host,
      host.run(['uname', '-s'], { mutates: false }).then((r) => r.stdout.trim()),
    );
  return (await systems.get(host)) === 'SunOS' ? `/dev/zvol/dsk/${volume}` : `/dev/zvol/${volume}`;
}

/** `uname -s` of each host, asked once. */
const systems = new WeakMap<Host, Promise<string>>();
