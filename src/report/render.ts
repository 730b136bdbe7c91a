import { consistencyLine, describeOutcome } from '../backup/hook-run.js';
import type { DrillRecord } from '../restore/drill-record.js';
import { formatAge } from '../status/health.js';
import { formatDuration } from './stale.js';
import type { DatasetResult, RunStatus, TargetBehind, VmBackupResult } from './types.js';

/** The report as text (log, stdout, email text part) and HTML (email), from one result. */

export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function renderSubject(template: string, result: VmBackupResult): string {
  return template
    .replaceAll('[vm.alias]', result.alias ?? result.uuid)
    .replaceAll('[vm.uuid]', result.uuid)
    .replaceAll('[vm.brand]', result.brand ?? 'unknown brand');
}

export function headline(result: VmBackupResult): string {
  const name = result.alias ? `${result.alias} (${result.uuid})` : result.uuid;
  // a run to several targets has a row per target: count each dataset once
  const unique = (rows: DatasetResult[]) => new Set(rows.map((d) => d.dataset)).size;
  const own = result.datasets.filter((d) => !d.image);
  const images = unique(result.datasets.filter((d) => d.image));
  const failed = unique(own.filter((d) => d.result === 'failed'));
  const withImages = images > 0 ? ` (and ${images} image(s) they are cloned from)` : '';
  const words: Record<RunStatus, string> = {
    success: `Backup of VM ${name} completed: ${unique(own)} dataset(s)${withImages} sent to ${result.backupHost}.`,
    partial: `Backup of VM ${name} completed with errors: ${failed} of ${unique(own)} dataset(s) failed${result.errors.length ? `, ${result.errors.length} other error(s)` : ''}.`,
    failed: `Backup of VM ${name} FAILED.`,
  };
  return `${result.dryRun ? '[dry run] ' : ''}${words[result.status]}`;
}

const COLUMNS = ['dataset', 'snapshot', 'mode', 'bytes', 'seconds', 'result', 'error'] as const;

/** A run to several targets has a row per target and dataset: the table then starts with the target. */
function columns(result: VmBackupResult): string[] {
  return result.datasets.some((d) => d.targetName) ? ['target', ...COLUMNS] : [...COLUMNS];
}

function cells(d: DatasetResult, result: VmBackupResult): string[] {
  const row = cellsOf(d);
  return columns(result).length > COLUMNS.length ? [d.targetName ?? '', ...row] : row;
}

function cellsOf(d: DatasetResult): string[] {
  return [
    d.image ? `${d.dataset} (image)` : d.dataset,
    d.snapshot,
    d.mode,
    humanBytes(d.bytes),
    d.seconds.toFixed(1),
    d.result,
    d.error ?? '',
  ];
}

export function renderText(result: VmBackupResult): string {
  const lines = [
    headline(result),
    `snapshot ${result.snapshot ?? '-'}, ${result.startedAt.toISOString()} to ${result.finishedAt.toISOString()}`,
    ...consistencyLines(result),
    ...drillLines(result),
  ];
  if (result.datasets.length > 0) {
    const header = columns(result);
    const rows = [header, ...result.datasets.map((d) => cells(d, result))];
    const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    lines.push(
      '',
      ...rows.map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      ),
    );
  }
  const thinned = thinnedSnapshots(result);
  if (thinned.length > 0) lines.push('', `thinned: ${thinned.join(', ')}`);
  const behind = (result.behind ?? []).map(behindLine);
  if (behind.length > 0) lines.push('', ...behind.map((b) => `warning: ${b}`));
  const discarded = discardedSnapshots(result);
  if (discarded.length > 0) lines.push('', `destroyed by --rollback on the backup host: ${discarded.join(', ')}`);
  if (result.errors.length > 0) lines.push('', 'errors:', ...result.errors.map((e) => `  - ${e}`));
  return lines.join('\n');
}

/** How consistent the snapshot is, each hook that ran with its result, and why a hook did not run. */
export function consistencyLines(result: Pick<VmBackupResult, 'consistency'>): string[] {
  const record = result.consistency;
  if (!record || (record.hooks.length === 0 && record.notes.length === 0))
    return record ? [`consistency: ${consistencyLine(record)}`] : [];
  return [
    `consistency: ${consistencyLine(record)}`,
    ...record.hooks.map((h) => `  ${describeOutcome(h)} (${h.seconds.toFixed(1)} s)`),
    ...record.notes.map((n) => `  note: ${n}`),
  ];
}

/** The VM's last restore drill (`zonecopy drill`) as of the end of the run, when it had one. */
function drillLines(result: Pick<VmBackupResult, 'lastDrill' | 'finishedAt'>): string[] {
  return result.lastDrill ? [drillLine(result.lastDrill, result.finishedAt.getTime())] : [];
}

/** `last restore drill 2.0h ago: ok, set daily-b1 from offsite (RTO 12.3 s, 56.0 MiB)`, or FAILED with what differed. Pure. */
export function drillLine(record: DrillRecord, now: number): string {
  const age = formatAge(Math.max(0, (now - Date.parse(record.at)) / 1000));
  const what = `set ${record.snapshot} from ${record.target} (RTO ${record.rtoSeconds.toFixed(1)} s, ${humanBytes(record.bytes)})`;
  if (record.result === 'ok') return `last restore drill ${age} ago: ok, ${what}`;
  return `last restore drill ${age} ago FAILED, ${what}: ${record.problems.join('; ') || 'no reason recorded'}`;
}

/**
 * What rotation destroyed, each once: `here` on this host (every target's row of a dataset may name
 * the same ones), `on <target>` there (a run with one target names none in its rows: its label then).
 */
function thinnedSnapshots(result: VmBackupResult): string[] {
  const here = [...new Set(result.datasets.flatMap((d) => d.rotatedLocal))].map((s) => `here ${s}`);
  const there = result.datasets.flatMap((d) =>
    d.rotatedRemote.map((s) => `on ${d.targetName ?? result.backupHost} ${s}`),
  );
  return [...here, ...there];
}

/** `offsite is behind: newest common snapshot … is 29.0d old (staleAfter 2d)`. */
export function behindLine(b: TargetBehind): string {
  const stale = `(staleAfter ${formatDuration(b.staleAfter)})`;
  if (b.snapshot === undefined)
    return `${b.target} is behind: no snapshot in common with a dataset of this VM ${stale}`;
  return `${b.target} is behind: newest common snapshot ${b.snapshot} is ${formatAge(b.ageSeconds)} old ${stale}`;
}

function discardedSnapshots(result: VmBackupResult): string[] {
  return result.datasets.flatMap((d) => d.discarded ?? []);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderHtml(result: VmBackupResult): string {
  const colour = { success: '#1a7f37', partial: '#9a6700', failed: '#cf222e' }[result.status];
  const bytesColumn = columns(result).indexOf('bytes');
  const rows = result.datasets
    .map(
      (d) =>
        `<tr>${cells(d, result)
          .map((c, i) =>
            i === bytesColumn ? `<td title="${d.bytes} bytes">${escapeHtml(c)}</td>` : `<td>${escapeHtml(c)}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('\n');
  const errors = result.errors.length
    ? `<h3>Errors</h3><ul>${result.errors.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`
    : '';
  const discarded = discardedSnapshots(result);
  const discardedHtml = discarded.length
    ? `<p>Destroyed by --rollback on the backup host: ${escapeHtml(discarded.join(', '))}</p>`
    : '';
  const behind = (result.behind ?? [])
    .map((b) => `<p style="color:#9a6700"><strong>Warning:</strong> ${escapeHtml(behindLine(b))}</p>`)
    .join('\n');
  const thinned = thinnedSnapshots(result);
  const thinnedHtml = thinned.length ? `<p>Thinned: ${escapeHtml(thinned.join(', '))}</p>` : '';
  return [
    `<p style="color:${colour}"><strong>${escapeHtml(headline(result))}</strong></p>`,
    `<p>Snapshot ${escapeHtml(result.snapshot ?? '-')}, ${escapeHtml(result.startedAt.toISOString())} to ${escapeHtml(result.finishedAt.toISOString())}</p>`,
    ...consistencyLines(result).map((line) => `<p>${escapeHtml(line)}</p>`),
    ...drillLines(result).map(
      (line) => `<p${result.lastDrill?.result === 'failed' ? ' style="color:#cf222e"' : ''}>${escapeHtml(line)}</p>`,
    ),
    `<table border="1" cellpadding="4" cellspacing="0"><tr>${columns(result)
      .map((c) => `<th>${c}</th>`)
      .join('')}</tr>\n${rows}\n</table>`,
    thinnedHtml,
    behind,
    discardedHtml,
    errors,
  ].join('\n');
}
