import type { Config } from '../config/schema.js';
import { renderHtml, renderSubject, renderText } from './render.js';
import { renderSummaryHtml, renderSummaryText, summaryStatus } from './summary.js';
import type { VmBackupResult } from './types.js';

export interface MailOutcome {
  sent: boolean;
  note: string;
}

interface Mail {
  subject: string;
  text: string;
  html: string;
}

/**
 * Emails the report. Never throws: a mail problem must not turn a good backup into a crash, so
 * it comes back as a note for the caller to print.
 */
export async function sendReportEmail(config: Config, result: VmBackupResult): Promise<MailOutcome> {
  const subjects = { success: config.successSubject, partial: config.partialSubject, failed: config.failedSubject };
  return sendMail(config, {
    subject: renderSubject(subjects[result.status], result),
    text: renderText(result),
    html: renderHtml(result),
  });
}

/** One email for a run of several VMs: a section per VM; the subject's [vm.alias] becomes "N VMs". */
export async function sendSummaryEmail(
  config: Config,
  results: readonly VmBackupResult[],
  notes: readonly string[] = [],
): Promise<MailOutcome> {
  const subjects = { success: config.successSubject, partial: config.partialSubject, failed: config.failedSubject };
  const subject = subjects[summaryStatus(results)]
    .replaceAll('[vm.alias]', `${results.length} VMs`)
    .replaceAll('[vm.uuid]', `${results.length} VMs`)
    .replaceAll('[vm.brand]', 'several brands');
  return sendMail(config, {
    subject,
    text: renderSummaryText(results, notes),
    html: renderSummaryHtml(results, notes),
  });
}

async function sendMail(config: Config, mail: Mail): Promise<MailOutcome> {
  if (!config.smtpHostname) return { sent: false, note: 'email not sent: smtpHostname is not configured' };
  if (!config.notifiers.includes('email'))
    return { sent: false, note: 'email not sent: notificationOrder does not include email' };
  try {
    // loaded only when a report is mailed: most runs never pay for parsing nodemailer
    const { default: nodemailer } = await import('nodemailer');
    const transport = nodemailer.createTransport({
      host: config.smtpHostname,
      port: config.smtpPort,
      secure: config.smtpSecure,
      auth: config.smtpUsername ? { user: config.smtpUsername, pass: config.smtpPassword ?? '' } : undefined,
      tls: { rejectUnauthorized: config.smtpRejectUnauthorized },
      connectionTimeout: 20_000,
    });
    const info = await transport.sendMail({ from: config.smtpFromAddress, to: config.smtpToAddress, ...mail });
    transport.close();
    return { sent: true, note: `report emailed to ${[config.smtpToAddress].flat().join(', ')} (${info.messageId})` };
  } catch (error) {
    return {
      sent: false,
      note: `email not sent via ${config.smtpHostname}:${config.smtpPort}: ${(error as Error).message}`,
    };
  }
}
