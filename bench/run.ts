/**
 * `npm run bench`: boots the real-OpenZFS guest, runs bench/guest.ts in it (which writes
 * bench/results.json), then rewrites the figures table in bench/README.md from that file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellQuote } from '../src/host/quote.js';
import { Guest, PROJECT_ROOT } from '../test/guest/vm.js';

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const guest = await Guest.start({ instance: 'bench', log });
  let code: number;
  try {
    log(await guest.setupHosts());
    const env = [
      'BENCH_DATASETS',
      'BENCH_MB',
      'BENCH_RSS_MB',
      'BENCH_HISTORY',
      'BENCH_PHASES',
      'BENCH_CONFIG',
      'BENCH_STRATEGIES',
      'BENCH_RESTORE_MB',
      'BENCH_VMS',
      'BENCH_CYCLES',
    ]
      .filter((k) => process.env[k])
      .map((k) => `${k}=${shellQuote(process.env[k]!)}`)
      .join(' ');
    code = await guest.stream(`cd /mnt/host && ${env} node build/bench/guest.js`);
  } finally {
    await guest.stop();
  }
  if (code === 0) writeTable();
  return code;
}

const f = (n: number, digits = 1) => n.toFixed(digits);

/** A phase's table rows, or one row saying it was not measured. */
function rowsOf<T>(figures: T[] | undefined, columns: number, row: (figure: T) => string): string[] {
  return figures ? figures.map(row) : [`| not measured in this run |${' |'.repeat(columns - 1)}`];
}

function writeTable(): void {
  const r = JSON.parse(readFileSync(join(PROJECT_ROOT, 'bench/results.json'), 'utf8'));
  const lines = [
    `Measured ${r.measuredAt}; ${r.environment}.${r.note ? ` ${r.note}.` : ''}`,
    '',
    '| datasets | zonecopy no-change run | per-dataset loop | time ratio | programs (zonecopy / loop) | program ratio |',
    '|---|---|---|---|---|---|',
    ...rowsOf(
      r.overhead,
      6,
      (o: Record<string, number>) =>
        `| ${o.datasets} | ${f(o.zonecopySeconds!)} s | ${f(o.baselineSeconds!)} s | ${f(o.timeRatio!, 2)}x | ${o.zonecopyPrograms} / ${o.baselinePrograms} | ${f(o.programRatio!, 2)}x |`,
    ),
    '',
    '| data | path | MB/s | ratio to the plain pipeline |',
    '|---|---|---|---|',
    ...rowsOf(
      r.dataPath,
      4,
      (d: Record<string, string | number>) =>
        `| ${d.data} | ${String(d.path).replace(/\|/g, '\\|')} | ${f(Number(d.mbPerSecond), 0)} | ${d.ratioToPlain === undefined ? '—' : `${f(Number(d.ratioToPlain) * 100, 0)} %`} |`,
    ),
    '',
    '| stream | peak RSS of zonecopy |',
    '|---|---|',
    ...rowsOf(r.memory, 2, (m: Record<string, number>) => `| ${m.streamMB} MB | ${f(m.maxRssMiB!, 0)} MiB |`),
    '',
    '| snapshots per dataset | on the target | no-change run | ratio |',
    '|---|---|---|---|',
    ...rowsOf(
      r.history,
      4,
      (h: Record<string, number>) =>
        `| ${h.snapshotsPerDataset} | ${h.snapshotsOnTarget} | ${f(h.noChangeSeconds!)} s | ${f(h.ratioToSmallest!, 2)}x |`,
    ),
    '',
    '| VM data | restore, whole | restore --force over the set before | ratio |',
    '|---|---|---|---|',
    ...rowsOf(
      r.restore,
      4,
      (x: Record<string, number>) =>
        `| ${x.dataMB} MB | ${f(x.fullSeconds!)} s | ${f(x.incrementalSeconds!)} s | ${f(x.ratio!, 2)}x |`,
    ),
    '',
    '| VMs × datasets, no changes | one `backup --all` | one `backup <uuid>` per VM, one after another | ratio |',
    '|---|---|---|---|',
    ...rowsOf(
      r.allVms,
      4,
      (x: Record<string, number>) =>
        `| ${x.vms} × ${x.datasets} | ${f(x.allSeconds!)} s | ${f(x.sequentialSeconds!)} s | ${f(x.ratio!, 2)}x |`,
    ),
    '',
    '| continuous mode (`every: 15s`) | a cycle in `serve` | the same cycle as bare commands | ratio (goal ≤ 1.5x) |',
    '|---|---|---|---|',
    ...rowsOf(
      r.continuous,
      4,
      (x: Record<string, number>) =>
        `| ${x.cycles} cycles of an OS zone (2 datasets) | ${f(x.cycleSeconds!, 2)} s | ${f(x.bareSeconds!, 2)} s | ${f(x.ratio!, 2)}x |`,
    ),
  ];
  const readme = join(PROJECT_ROOT, 'bench/README.md');
  const text = readFileSync(readme, 'utf8');
  const begin = '<!-- figures -->';
  const end = '<!-- /figures -->';
  writeFileSync(
    readme,
    `${text.slice(0, text.indexOf(begin) + begin.length)}\n${lines.join('\n')}\n${text.slice(text.indexOf(end))}`,
  );
  log('updated bench/README.md');
}

if (process.argv.includes('--table-only')) {
  writeTable(); // redraws the README table from bench/results.json
  process.exit(0);
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    log(`bench failed: ${error.message}`);
    process.exit(1);
  },
);
