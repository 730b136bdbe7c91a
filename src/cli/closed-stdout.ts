/**
 * `zonecopy … | head -1`: once the reader of stdout has gone, what is left to print is dropped
 * and the command ends as it would have (a backup is not abandoned halfway because nobody reads
 * its report), instead of Node ending it with an EPIPE stack trace.
 */
export function dropOutputWhenStdoutCloses(stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}
