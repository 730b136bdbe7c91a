/**
 * `npm test`: unit tests here on the host, then the integration suite inside the real-OpenZFS
 * guest (built or reused from ~/.cache/zonecopy), and one closing count line for both.
 *
 *   ZC_UNIT_ONLY=1            skip the guest
 *   ZC_TEST_FILES='a b'       run only these integration test files (names under test/integration)
 *   ZC_GUEST_INSTANCE=name    run the guests under ~/.cache/zonecopy/run-<name>-<n> (so two runs can share the machine)
 *   ZC_GUESTS=n               split the integration files over n guests side by side (default 2); the backup
 *                             host's login shell is csh in guest 1, dash in guest 2 (and so on)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, Guest, PROJECT_ROOT } from './guest/vm.js';

interface Counts {
  passed: number;
  failed: number;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

function countsFromTap(tap: string): Counts {
  const pick = (name: string) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { passed: pick('pass'), failed: pick('fail') + pick('cancelled') };
}

function testFiles(folder: string, only?: string): string[] {
  const dir = join(PROJECT_ROOT, 'build/test', folder);
  const wanted = only?.split(/\s+/).filter(Boolean);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.js'))
    .filter((f) => !wanted || wanted.some((w) => f.startsWith(w.replace(/\.test\.(ts|js)$/, ''))))
    .sort()
    .map((f) => `build/test/${folder}/${f}`);
}

const reporterArgs = (tapFile: string) => [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
];

function runUnit(): Counts {
  log('== unit tests (host)');
  const dir = mkdtempSync(join(tmpdir(), 'zonecopy-unit-'));
  try {
    const tap = join(dir, 'unit.tap');
    // two files at a time: many wait on child processes and timers, so the second core has room (3:02 -> 2:25 here)
    spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...reporterArgs(tap), ...testFiles('unit')], {
      cwd: PROJECT_ROOT,
      stdio: 'inherit',
    });
    return countsFromTap(readFileSync(tap, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The installer the packaging tests use, built twice to show the build is reproducible. */
function buildInstallerTwice(): void {
  const sums: string[] = [];
  for (let i = 0; i < 2; i++) {
    const out = spawnSync('bash', ['build_distribution.sh'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`build_distribution.sh failed: ${out.stderr}`);
    sums.push(out.stdout.match(/payload sha256 ([0-9a-f]{64})/)?.[1] ?? 'none');
  }
  writeFileSync(join(PROJECT_ROOT, 'build/install-checksums.txt'), `${sums.join('\n')}\n`);
  log(`installer built twice, payload sha256 ${sums.join(' / ')}`);
}

/**
 * Rough minutes each integration file takes in a guest beside another (TCG, 2 cores), to split the files into
 * groups of equal length; a file not listed counts as 5. As a full run on a development machine on 2026-12-02
 * measured them (restore 1595 s, s3 965 s, transfer-rotation 749 s, faults-streams 672 s, targets 607 s,
 * discovery-snapshot 558 s, report-spec-cli 441 s, serve 225 s, hooks 192 s, backup-os-zone 99 s, packaging
 * 80 s); faults-hosts from the run before it, less the cases since moved to unit tests.
 */
const MINUTES: Record<string, number> = {
  restore: 26.6,
  s3: 16.1,
  'transfer-rotation': 12.5,
  'faults-streams': 11.2,
  targets: 10.1,
  'discovery-snapshot': 9.3,
  'faults-hosts': 9,
  'report-spec-cli': 7.4,
  serve: 3.8,
  hooks: 3.2,
  'backup-os-zone': 1.7,
  packaging: 1.3,
};
/** Longest first, each into the group with the least so far. */
function splitIntoGroups(files: readonly string[], count: number): string[][] {
  const groups = Array.from({ length: count }, () => ({ files: [] as string[], minutes: 0 }));
  const minutes = (file: string) => MINUTES[file.replace(/^.*\/|\.test\.js$/g, '')] ?? 5;
  for (const file of [...files].sort((a, b) => minutes(b) - minutes(a))) {
    const lightest = groups.reduce((a, b) => (b.minutes < a.minutes ? b : a));
    lightest.files.push(file);
    lightest.minutes += minutes(file);
  }
  return groups.map((g) => g.files.sort()).filter((g) => g.length > 0);
}

/** Writes another process's output line by line, each line marked with the guest it came from. */
function prefixedWriter(prefix: string): (text: string) => void {
  let partial = '';
  return (text) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
  };
}

/** One guest runs one group of files; its counts come from its own TAP file. */
async function runGroup(
  files: readonly string[],
  instance: string,
  prefix: string,
  backupShell: 'csh' | 'dash',
): Promise<Counts> {
  const say = (line: string) => log(`${prefix}${line}`);
  const guest = await Guest.start({ log: say, instance });
  try {
    say(await guest.setupHosts('setup', backupShell));
    say(
      `runs ${files.map((f) => f.replace(/^.*\//, '')).join(' ')} against OpenZFS ${guest.zfsVersion} (kernel module), ${(await guest.sh('zfs version | head -1')).stdout.trim()}`,
    );
    const started = Date.now();
    await guest.stream(
      `cd /mnt/host && node --test --test-concurrency=1 ${reporterArgs('/tmp/integration.tap').join(' ')} ${files.join(' ')}`,
      prefixedWriter(prefix),
    );
    say(`group took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const tap = await guest.sh('cat /tmp/integration.tap', { allowFailure: true });
    return countsFromTap(tap.stdout);
  } finally {
    await guest.stop();
  }
}

/**
 * The integration files in ZC_GUESTS guests side by side (default 2): a guest keeps about one of
 * this machine's two cores busy, so two halve the suite's time. The first guest boots (and builds
 * the image if needed) before the others start, so they find the image cached.
 */
async function runIntegration(): Promise<Counts> {
  log('== integration tests (real OpenZFS guests)');
  buildInstallerTwice();
  const files = testFiles('integration', process.env.ZC_TEST_FILES);
  const groups = splitIntoGroups(files, Math.max(1, Number(process.env.ZC_GUESTS ?? 2)));
  const base = process.env.ZC_GUEST_INSTANCE ?? 'test';
  const started = Date.now();
  buildImage(log);
  // the backup host's login shell alternates, so the suite passes under csh and under dash
  const shells = ['csh', 'dash'] as const;
  const runs = groups.map((group, i) =>
    runGroup(group, `${base}-${i + 1}`, groups.length > 1 ? `[guest ${i + 1}] ` : '', shells[i % 2]!).catch(
      (error: Error) => {
        log(`guest ${i + 1} could not run ${group.length} file(s): ${error.message}`);
        return { passed: 0, failed: 1 };
      },
    ),
  );
  const counts = await Promise.all(runs);
  log(`integration suite took ${((Date.now() - started) / 1000).toFixed(0)} s in ${groups.length} guest(s)`);
  return counts.reduce((a, b) => ({ passed: a.passed + b.passed, failed: a.failed + b.failed }));
}

async function main(): Promise<number> {
  const unit = runUnit();
  let integration: Counts = { passed: 0, failed: 0 };
  if (!process.env.ZC_UNIT_ONLY) {
    try {
      integration = await runIntegration();
    } catch (error) {
      log(`integration suite could not run: ${(error as Error).message}`);
      integration.failed += 1;
    }
  }
  const passed = unit.passed + integration.passed;
  const failed = unit.failed + integration.failed;
  log(
    `unit: ${unit.passed} passed, ${unit.failed} failed; integration: ${integration.passed} passed, ${integration.failed} failed`,
  );
  log(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

void main().then((code) => process.exit(code));
