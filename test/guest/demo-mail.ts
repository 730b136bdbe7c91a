/**
 * The demo's mail receiver: an SMTP server on 127.0.0.1:PORT that saves each report it receives
 * as DIR/mail-N.txt and DIR/mail-N.html (open that one in a browser) and prints where.
 *   node build/test/guest/demo-mail.js PORT DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const [port = '2525', dir = '/var/tmp/zonecopy-demo-mail'] = process.argv.slice(2);
mkdirSync(dir, { recursive: true });
let count = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, _session, callback) {
    simpleParser(stream).then((mail) => {
      const base = join(dir, `mail-${++count}`);
      writeFileSync(`${base}.txt`, `Subject: ${mail.subject ?? ''}\n\n${mail.text ?? ''}`);
      writeFileSync(`${base}.html`, typeof mail.html === 'string' ? mail.html : '');
      process.stdout.write(`[mail] "${mail.subject ?? ''}" saved as ${base}.txt and ${base}.html\n`);
      callback();
    }, callback);
  },
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
