import type { Config } from '../config/schema.js';
import type { Log } from '../log.js';
import { sendReportEmail, sendSummaryEmail } from '../report/email.js';
import { appendRunLog } from '../report/log-file.js';
import type { VmBackupResult } from '../report/types.js';

/**
 * When serve emails (serviceEmail): `changes` (default) when a VM's result differs from its previous
 * cycle's, and for a first cycle that did not succeed, so a continuous policy does not mail every 15 s
 * while a host is down, yet the failure and the recovery each arrive once; `failures` every cycle
 * that did not succeed; `always`; `never`.
 */
export type EmailMode = 'changes' | 'failures' | 'always' | 'never';

export interface ReportContext {
  config: Config;
  log: Log;
  mode: EmailMode;
  /** Each VM's previous status under each policy (`policy uuid`), updated here. */
  previous: Map<string, VmBackupResult['status']>;
}

/** Which results of a cycle are mailed (pure), and the previous statuses updated. */
export function toMail(
  policy: string,
  results: readonly VmBackupResult[],
  mode: EmailMode,
  previous: Map<string, VmBackupResult['status']>,
): VmBackupResult[] {
  const mailed = results.filter((r) => {
    const before = previous.get(`${policy} ${r.uuid}`);
    if (mode === 'always') return true;
    if (mode === 'never') return false;
    if (mode === 'failures') return r.status !== 'success';
    return before === undefined ? r.status !== 'success' : before !== r.status;
  });
  for (const r of results) previous.set(`${policy} ${r.uuid}`, r.status);
  return mailed;
}

/** One line per VM in the service log, each VM's report appended to its log file (as backup does), and the mails. */
export async function reportCycle(
  policy: string,
  results: readonly VmBackupResult[],
  notes: readonly string[],
  context: ReportContext,
): Promise<void> {
  const { config, log } = context;
  for (const r of results) {
    const bytes = r.datasets.reduce((sum, d) => sum + d.bytes, 0);
    const took = (r.finishedAt.getTime() - r.startedAt.getTime()) / 1000;
    const why =
      r.status === 'success'
        ? ''
        : `: ${[...r.errors, ...r.datasets.flatMap((d) => (d.error ? [d.error] : []))][0] ?? ''}`;
    log.info(
      `policy ${policy}: VM ${r.alias ?? r.uuid} (${r.uuid}) ${r.status} in ${took.toFixed(1)} s (${r.startedAt.toISOString()} to ${r.finishedAt.toISOString()}), ${bytes} bytes${r.snapshot ? `, @${r.snapshot}` : ''}${why}`,
    );
    const logged = appendRunLog(config.logDirectory, r);
    if (typeof logged !== 'string') log.warn(logged.error);
  }
  const mailed = toMail(policy, results, context.mode, context.previous);
  if (mailed.length === 0) return;
  const outcomes =
    mailed.length > 1 && !config.emailPerVm
      ? [await sendSummaryEmail(config, mailed, notes)]
      : await Promise.all(mailed.map((r) => sendReportEmail(config, r)));
  for (const o of outcomes) if (!o.sent) log.verbose(o.note);
}
