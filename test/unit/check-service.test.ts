import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkService, withService, type Verdict } from '../../src/cli/check-command.js';
import type { ServiceState } from '../../src/service/state.js';
import { scratchDirectory } from './scratch.js';

/** `check` covers a service that stopped cycling, read from a real state file. */

const scratch = scratchDirectory('zc-check-service-');
const NOW = 1_700_000_000;

function stateFile(overrides: Partial<ServiceState> = {}): string {
  const file = join(scratch(), 'service.json');
  const state: ServiceState = {
    version: 1,
    pid: 31337,
    startedAt: NOW - 86400,
    heartbeat: NOW - 5,
    config: { path: '/opt/zonecopy/config.json', loadedAt: NOW - 86400 },
    policies: [{ name: 'continuous', when: 'every 15s', cycles: 5000, skipped: 0, notes: [] }],
    vms: [],
    transfers: [],
    ...overrides,
  };
  writeFileSync(file, JSON.stringify(state));
  return file;
}

const OK: Verdict = { code: 0, line: '3 VM(s) backed up, oldest 20m ago (db01)' };

describe('check and the service', () => {
  it('a fresh heartbeat is no problem, and the details say which service was seen', async () => {
    const file = stateFile();
    const found = await checkService({ serviceStateFile: file }, NOW);
    assert.equal(found.problem, undefined);
    const verdict = withService(OK, found);
    assert.equal(verdict.code, 0);
    assert.equal(verdict.line, OK.line);
    assert.deepEqual(verdict.details, [`zonecopy serve pid 31337: heartbeat 5s ago (${file})`]);
  });

  it('a heartbeat older than the limit is CRITICAL, naming the file, the pid and the age', async () => {
    const file = stateFile({ heartbeat: NOW - 600 });
    const verdict = withService(OK, await checkService({ serviceStateFile: file }, NOW));
    assert.equal(verdict.code, 2);
    assert.equal(
      verdict.line,
      `zonecopy serve (pid 31337) stopped cycling: heartbeat 10m00s ago in ${file} (limit 1m00s); ${OK.line}`,
    );
  });

  it('a service stopped on a signal is CRITICAL too, and says it was stopped rather than that it hangs', async () => {
    const file = stateFile({ heartbeat: NOW - 600, stoppedAt: NOW - 600 });
    const verdict = withService(OK, await checkService({ serviceStateFile: file }, NOW));
    assert.equal(verdict.code, 2);
    assert.match(
      verdict.line,
      /^zonecopy serve \(pid 31337\) was stopped 10m00s ago .*start it again \(svcadm enable zonecopy\)/,
    );
  });

  it('the limit follows the slowest-ticking policy: 3 x the shortest every, at least 60 s', async () => {
    const policies = [{ name: 'hourly', when: 'every 1h', cycles: 3, skipped: 0, notes: [] }];
    const within = stateFile({ heartbeat: NOW - 2 * 3600, policies });
    assert.equal((await checkService({ serviceStateFile: within }, NOW)).problem, undefined);
    const beyond = stateFile({ heartbeat: NOW - 3 * 3600 - 1, policies });
    assert.match((await checkService({ serviceStateFile: beyond }, NOW)).problem ?? '', /limit 3h00m/);
  });

  it('policies configured and no state file: CRITICAL; no policies and no file: no service expected', async () => {
    const file = join(scratch(), 'service.json');
    const configured = withService(OK, await checkService({ serviceStateFile: file, policies: [{ name: 'p' }] }, NOW));
    assert.equal(configured.code, 2);
    assert.match(
      configured.line,
      /^policies are configured but no service state file .*service\.json: zonecopy serve is not running/,
    );
    assert.deepEqual(withService(OK, await checkService({ serviceStateFile: file }, NOW)), OK);
  });

  it('a state file that cannot be read makes an OK check UNKNOWN, and a stopped service outranks UNKNOWN', async () => {
    const file = join(scratch(), 'service.json');
    writeFileSync(file, 'not json');
    const unreadable = withService(OK, await checkService({ serviceStateFile: file }, NOW));
    assert.equal(unreadable.code, 3);
    assert.match(unreadable.line, /service\.json is not JSON/);
    const cannotLook: Verdict = { code: 3, line: 'vmadm: not found' };
    const stopped = await checkService({ serviceStateFile: stateFile({ heartbeat: NOW - 3600 }) }, NOW);
    assert.equal(withService(cannotLook, stopped).code, 2);
    assert.equal(withService({ code: 2, line: 'db01 last backup 3d ago' }, stopped).code, 2);
  });
});
