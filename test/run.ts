/**
 * `npm test`: unit tests here on the host, then the integration suite inside the real-OpenZFS
 * guest (built or reused from ~/.cache/zonecopy), and one closing count line for both.
 *
 *   ZC_UNIT_ONLY=1            skip the guest
 *   ZC_TEST_FILES='a b'       run only these integration test files (names under test/integration)
 *   ZC_GUEST_INSTANCE=name    run the guest under ~/.cache/zonecopy/run-<name> (so two runs can share the machine)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guest, PROJECT_ROOT } from './guest/vm.js';

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

const reporterArgs = (tapFile: string) => ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`];

function runUnit(): Counts {
  log('== unit tests (host)');
  const tap = join(mkdtempSync(join(tmpdir(), 'zonecopy-unit-')), 'unit.tap');
  spawnSync(process.execPath, ['--test', ...reporterArgs(tap), ...testFiles('unit')], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  return countsFromTap(readFileSync(tap, 'utf8'));
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

async function runIntegration(): Promise<Counts> {
  log('== integration tests (real OpenZFS guest)');
  buildInstallerTwice();
  const guest = await Guest.start({ log, instance: process.env.ZC_GUEST_INSTANCE });
  try {
    log(await guest.setupHosts());
    log(`integration suite runs against OpenZFS ${guest.zfsVersion} (kernel module), ${(await guest.sh('zfs version | head -1')).stdout.trim()}`);
    const files = testFiles('integration', process.env.ZC_TEST_FILES);
    const started = Date.now();
    await guest.stream(`cd /mnt/host && node --test --test-concurrency=1 ${reporterArgs('/tmp/integration.tap').join(' ')} ${files.join(' ')}`);
    log(`integration suite took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const tap = await guest.sh('cat /tmp/integration.tap', { allowFailure: true });
    return countsFromTap(tap.stdout);
  } finally {
    await guest.stop();
  }
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
  log(`unit: ${unit.passed} passed, ${unit.failed} failed; integration: ${integration.passed} passed, ${integration.failed} failed`);
  log(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

main().then((code) => process.exit(code));
