import type { Config } from '../config/schema.js';
import { renderHtml, renderSubject, renderText } from './render.js';
import type { VmBackupResult } from './types.js';

export interface MailOutcome {
  sent: boolean;
  note: string;
}

/**
 * Emails the report. Never throws: a mail problem must not turn a good backup into a crash, so
 * it comes back as a note for the caller to print.
 */
export async function sendReportEmail(config: Config, result: VmBackupResult): Promise<MailOutcome> {
  if (!config.smtpHostname) return { sent: false, note: 'email not sent: smtpHostname is not configured' };
  if (!config.notifiers.includes('email'))
    return { sent: false, note: 'email not sent: notificationOrder does not include email' };
  const subjects = { success: config.successSubject, partial: config.partialSubject, failed: config.failedSubject };
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
    const info = await transport.sendMail({
      from: config.smtpFromAddress,
      to: config.smtpToAddress,
      subject: renderSubject(subjects[result.status], result),
      text: renderText(result),
      html: renderHtml(result),
    });
    transport.close();
    return { sent: true, note: `report emailed to ${[config.smtpToAddress].flat().join(', ')} (${info.messageId})` };
  } catch (error) {
    return {
      sent: false,
      note: `email not sent via ${config.smtpHostname}:${config.smtpPort}: ${(error as Error).message}`,
    };
  }
}
