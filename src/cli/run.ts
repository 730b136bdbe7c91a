import { dropOutputWhenStdoutCloses } from './closed-stdout.js';
import { main } from './main.js';

dropOutputWhenStdoutCloses();

/** Entry of bin/zonecopy and bin/backup (and of the bundle). */
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `zonecopy: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
