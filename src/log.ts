/** Progress and diagnostics go to stderr; stdout is kept for results (`--json`, dry-run steps). */
export interface Log {
  info(message: string): void;
  verbose(message: string): void;
  warn(message: string): void;
}

export function stderrLog(verbose: boolean): Log {
  return {
    info: (m) => process.stderr.write(`${m}\n`),
    verbose: (m) => {
      if (verbose) process.stderr.write(`${m}\n`);
    },
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
  };
}

export const silentLog: Log = { info() {}, verbose() {}, warn() {} };
