import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readServiceState } from '../../src/service/state-file.js';
import type { ServiceState } from '../../src/service/state.js';
import {
  DEFAULT_SERVICE_STATE_FILE,
  heartbeatLimit,
  renderWatch,
  serviceStopped,
  watchService,
} from '../../src/status/watch.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-watch-');
const FILE = '/var/zonecopy/service.json';
const NOW = 1_700_000_620;
const UUID = '11111111-2222-3333-4444-555555555555';

function state(overrides: Partial<ServiceState> = {}): ServiceState {
  return {
    version: 1,
    pid: 4242,
    startedAt: NOW - 7200,
    heartbeat: NOW - 3,
    config: { path: '/opt/zonecopy/config.json', loadedAt: NOW - 300 },
    policies: [
      {
        name: 'continuous',
        when: 'every 15s',
        cycles: 40,
        skipped: 2,
        lastStartedAt: NOW - 13,
        lastFinishedAt: NOW - 11,
        nextAt: NOW + 2,
        notes: [],
      },
      { name: 'nightly', when: 'schedule 0 3 * * *', cycles: 0, skipped: 0, notes: ['selector matched no VM'] },
    ],
    vms: [
      {
        uuid: UUID,
        alias: 'web01',
        policy: 'continuous',
        target: 'backup1',
        running: true,
        lastStatus: 'success',
        lastSuccessAt: NOW - 11,
        lastDurationSeconds: 2,
        newestSnapshotAt: NOW - 32,
        bytesSentTotal: 3 * 1024 * 1024,
        failuresTotal: 1,
        rpoWorstSeconds: 45,
      },
      {
        uuid: '66666666-2222-3333-4444-555555555555',
        policy: 'nightly',
        target: 's3',
        running: false,
        lastStatus: 'failed',
        bytesSentTotal: 0,
        failuresTotal: 3,
        lastError: 'connection refused\nmore detail',
      },
    ],
    transfers: [
      {
        uuid: UUID,
        dataset: 'zones/web01/disk0',
        target: 'backup1',
        startedAt: NOW - 10,
        bytes: 10 * 1024 * 1024,
        estimatedBytes: 40 * 1024 * 1024,
      },
    ],
    ...overrides,
  };
}

describe('status --watch view', () => {
  const text = renderWatch(state(), FILE, NOW).join('\n');

  it('says which service it draws, how alive it is and its config', () => {
    assert.match(text, /^zonecopy serve pid 4242, up 2h00m, heartbeat 3s ago \(\/var\/zonecopy\/service\.json\)$/m);
    assert.match(text, /^config \/opt\/zonecopy\/config\.json, loaded 5m00s ago$/m);
    assert.doesNotMatch(text, /stopped cycling/);
  });

  it('lists policies with last and next cycle, cycles and skipped, and their notes', () => {
    assert.match(text, /continuous +every 15s +40 +2 +13s ago +11s ago +in 2s/);
    assert.match(text, /nightly +schedule 0 3 \* \* \* +0 +0 +never +never +-/);
    assert.match(text, /! nightly: selector matched no VM/);
  });

  it('gives each VM and target its status, last success, RPO lag aged to now and the worst, bytes and failures', () => {
    assert.match(text, /web01 \(11111111\) +backup1 +continuous +running +11s ago +2s +32s +45s +3\.0 MiB +1/);
    assert.match(text, /66666666-2222-3333-4444-555555555555 +s3 +nightly +failed +never +- +- +- +0 B +3/);
    assert.match(text, /! 66666666-2222-3333-4444-555555555555 -> s3: connection refused$/m);
  });

  it('shows each stream in flight with bytes of the estimate, rate and ETA', () => {
    assert.match(
      text,
      /zones\/web01\/disk0 -> backup1: 10\.0 MiB of ~40\.0 MiB \(25%\) 1\.0 MiB\/s ETA 30s \(running 10s\)$/m,
    );
  });

  it('shows only the VMs asked for', () => {
    const only = renderWatch(state(), FILE, NOW, { uuids: ['66666666-2222-3333-4444-555555555555'] }).join('\n');
    assert.doesNotMatch(only, /web01/);
    assert.match(only, /streams in flight:\n {2}\(none\)/);
  });

  it('says so when the service stopped cycling or refused a reload', () => {
    const old = renderWatch(
      state({ heartbeat: NOW - 600, config: { path: '/c.json', loadedAt: NOW, reloadError: 'line 3: bad' } }),
      FILE,
      NOW,
    ).join('\n');
    assert.match(
      old,
      /! zonecopy serve \(pid 4242\) stopped cycling: heartbeat 10m00s ago in \/var\/zonecopy\/service\.json/,
    );
    assert.match(old, /the last reload was refused, the previous config is kept: line 3: bad/);
  });
});

describe('a service that stopped cycling', () => {
  it('has a heartbeat older than 3 x its shortest every, and never less than 60 s', () => {
    assert.equal(heartbeatLimit(state()), 60);
    const slow = state().policies.map((p) => ({ ...p, when: p.name === 'continuous' ? 'every 5m' : p.when }));
    assert.equal(heartbeatLimit({ policies: slow }), 900);
    assert.equal(heartbeatLimit({ policies: [] }), 60);
    assert.equal(serviceStopped(state({ heartbeat: NOW - 60 }), FILE, NOW), undefined);
    assert.match(serviceStopped(state({ heartbeat: NOW - 61 }), FILE, NOW) ?? '', /pid 4242.*1m01s ago.*limit 1m00s/);
  });
});

describe('the state file', () => {
  it('missing, unreadable or of another version: each says so, naming the file', async () => {
    const dir = scratch();
    const missing = await readServiceState(join(dir, 'service.json'));
    assert.ok(!('state' in missing) && missing.missing);
    assert.match(missing.error, /no service state file .*service\.json: zonecopy serve is not running/);
    writeFileSync(join(dir, 'bad.json'), '{"version":1,');
    const bad = await readServiceState(join(dir, 'bad.json'));
    assert.ok(!('state' in bad) && !bad.missing && /bad\.json is not JSON/.test(bad.error));
    writeFileSync(join(dir, 'v2.json'), JSON.stringify({ ...state(), version: 2 }));
    const other = await readServiceState(join(dir, 'v2.json'));
    assert.ok(!('state' in other) && /v2\.json is not one this zonecopy reads \(version 2/.test(other.error));
  });
});

describe('watching', () => {
  it('draws frames until stopped, and ends by itself naming the file when the service stops', async () => {
    const file = join(scratch(), 'service.json');
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(file, JSON.stringify({ ...state(), heartbeat: now, startedAt: now - 10 }));
    const frames: string[] = [];
    const stop = new AbortController();
    const out = {
      write: (text: string) => {
        frames.push(text);
        if (frames.length === 2) writeFileSync(file, JSON.stringify({ ...state(), heartbeat: now - 3600 }));
      },
    };
    const ended = await watchService({ file, intervalMs: 30, out, signal: stop.signal });
    assert.equal(frames.length, 2);
    assert.match(frames[0]!, /^zonecopy serve pid 4242/);
    assert.match(ended ?? '', new RegExp(`pid 4242\\) stopped cycling: heartbeat 1h00m ago in ${file}`));

    writeFileSync(file, JSON.stringify({ ...state(), heartbeat: now + 60 }));
    setTimeout(() => stop.abort(), 100);
    assert.equal(
      await watchService({ file, intervalMs: 30, out: { write: () => undefined }, signal: stop.signal }),
      undefined,
    );
  });

  it(
    '`zonecopy status --watch` without a service exits 1 naming the state file',
    { skip: existsSync(DEFAULT_SERVICE_STATE_FILE) },
    () => {
      const config = join(scratch(), 'configuration.json');
      writeFileSync(
        config,
        JSON.stringify({ backupDestination: 'backup.example', backupDestinationBasePath: 'backup/zones' }),
      );
      const entry = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));
      const run = spawnSync(process.execPath, [entry, 'status', '--watch', '--config', config], { encoding: 'utf8' });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /no service state file \/var\/zonecopy\/service\.json: zonecopy serve is not running/);
      const usage = spawnSync(process.execPath, [entry, 'status', '--watch', '--json', '--config', config], {
        encoding: 'utf8',
      });
      assert.equal(usage.status, 2);
    },
  );
});
