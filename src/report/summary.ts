import { escapeHtml, humanBytes, renderHtml, renderText } from './render.js';
import type { RunStatus, VmBackupResult } from './types.js';

/** One run's status over all its VMs: success only if every VM succeeded, failed only if every VM failed. */
export function summaryStatus(results: readonly VmBackupResult[]): RunStatus {
  if (results.length > 0 && results.every((r) => r.status === 'success')) return 'success';
  if (results.length > 0 && results.every((r) => r.status === 'failed')) return 'failed';
  return results.length === 0 ? 'failed' : 'partial';
}

const vmName = (r: VmBackupResult) => (r.alias ? `${r.alias} (${r.uuid})` : r.uuid);

/** The summary's first lines: the count by outcome, then a line per VM (failed ones first). */
export function summaryLines(results: readonly VmBackupResult[], notes: readonly string[] = []): string[] {
  const count = (status: RunStatus) => results.filter((r) => r.status === status).length;
  const order: Record<RunStatus, number> = { failed: 0, partial: 1, success: 2 };
  const sorted = [...results].sort((a, b) => order[a.status] - order[b.status]);
  const bytes = (r: VmBackupResult) => r.datasets.reduce((sum, d) => sum + d.bytes, 0);
  const seconds = (r: VmBackupResult) => (r.finishedAt.getTime() - r.startedAt.getTime()) / 1000;
  return [
    `${results.length} VM(s): ${count('success')} succeeded, ${count('partial')} partly failed, ${count('failed')} failed.`,
    ...notes.map((n) => `note: ${n}`),
    ...sorted.map(
      (r) =>
        `  ${r.status.padEnd(7)}  ${vmName(r)}  ${humanBytes(bytes(r))} sent in ${seconds(r).toFixed(1)} s${r.errors[0] ? `  ${r.errors[0]}` : ''}`,
    ),
  ];
}

/** A run of several VMs as one text: the summary, then each VM's own report. */
export function renderSummaryText(results: readonly VmBackupResult[], notes: readonly string[] = []): string {
  return [summaryLines(results, notes).join('\n'), ...results.map((r) => `--- ${vmName(r)}\n${renderText(r)}`)].join(
    '\n\n',
  );
}

export function renderSummaryHtml(results: readonly VmBackupResult[], notes: readonly string[] = []): string {
  const [first, ...rest] = summaryLines(results, notes);
  return [
    `<p><strong>${escapeHtml(first!)}</strong></p>`,
    `<pre>${escapeHtml(rest.join('\n'))}</pre>`,
    ...results.map((r) => `<hr>\n<h3>${escapeHtml(vmName(r))}</h3>\n${renderHtml(r)}`),
  ].join('\n');
}
