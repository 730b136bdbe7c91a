import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listenMetrics, parseListenAddress, renderMetrics, writeTextfile } from '../../src/service/metrics.js';
import type { ServiceState } from '../../src/service/state.js';

/** The exposition is read by Prometheus, which refuses a whole scrape for one bad line: parse it back strictly. */

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): {
  help: Map<string, string>;
  types: Map<string, string>;
  samples: ParsedSample[];
} {
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const samples: ParsedSample[] = [];
  const closed = new Set<string>();
  let current: string | undefined;
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  assert.ok(text.endsWith('\n'), 'exposition ends with a line feed');
  const open = (family: string): void => {
    if (current !== family) {
      if (current !== undefined) closed.add(current);
      assert.ok(!closed.has(family), `family ${family} is contiguous`);
      current = family;
    }
  };
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, family, rest] = meta as unknown as [string, string, string, string];
      assert.match(family, name);
      open(family);
      const map = kind === 'HELP' ? help : types;
      assert.ok(!map.has(family), `${kind} of ${family} once`);
      if (kind === 'TYPE') {
        assert.ok(['counter', 'gauge'].includes(rest), `type ${rest}`);
        assert.ok(!samples.some((s) => s.name === family), `TYPE of ${family} before its samples`);
      }
      map.set(family, kind === 'HELP' ? rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\') : rest);
      continue;
    }
    assert.ok(!line.startsWith('#') && line !== '', `unexpected line ${JSON.stringify(line)}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `sample line ${JSON.stringify(line)}`);
    const [, sampleName, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    open(sampleName);
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined) {
      let rest = rawLabels.slice(1, -1);
      while (rest !== '') {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/.exec(rest);
        assert.ok(lm, `labels ${rawLabels}`);
        const [whole, key, escaped] = lm as unknown as [string, string, string];
        assert.ok(!(key in labels), `label ${key} once`);
        labels[key] = escaped.replace(/\\(\\|"|n)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        rest = rest.slice(whole.length);
      }
    }
    const value = Number(rawValue);
    assert.ok(/^(NaN|[+-]Inf|-?[0-9.e+-]+)$/.test(rawValue) && !Number.isNaN(value), `value ${rawValue}`);
    samples.push({ name: sampleName, labels, value });
  }
  for (const s of samples) {
    assert.ok(help.has(s.name), `HELP for ${s.name}`);
    assert.ok(types.has(s.name), `TYPE for ${s.name}`);
  }
  const keys = samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`);
  assert.equal(new Set(keys).size, keys.length, 'no sample twice');
  return { help, types, samples };
}

const hostile = 'we"b\\1\nsecond line';

function state(): ServiceState {
  return {
    version: 1,
    pid: 4242,
    startedAt: 1_700_000_000,
    heartbeat: 1_700_000_600,
    config: { path: '/opt/zonecopy/config.json', loadedAt: 1_700_000_000 },
    policies: [
      { name: 'continuous', when: 'every 15s', cycles: 40, skipped: 2, nextAt: 1_700_000_615, notes: [] },
      { name: 'nightly', when: 'schedule 0 3 * * *', cycles: 0, skipped: 0, notes: ['no VM matched'] },
    ],
    vms: [
      {
        uuid: '11111111-2222-3333-4444-555555555555',
        alias: hostile,
        policy: 'continuous',
        target: 'backup1',
        running: true,
        lastStatus: 'success',
        lastSuccessAt: 1_700_000_590,
        lastDurationSeconds: 2.5,
        newestSnapshotAt: 1_700_000_588,
        bytesSentTotal: 123_456_789,
        failuresTotal: 1,
        rpoLagSeconds: 12,
        rpoWorstSeconds: 30,
      },
      {
        uuid: '66666666-2222-3333-4444-555555555555',
        policy: 'nightly',
        target: 's3',
        running: false,
        lastStatus: 'failed',
        bytesSentTotal: 0,
        failuresTotal: 3,
        lastError: 'connection refused',
      },
    ],
    transfers: [
      {
        uuid: '11111111-2222-3333-4444-555555555555',
        dataset: 'zones/a',
        target: 'backup1',
        startedAt: 1_700_000_598,
        bytes: 1000,
        estimatedBytes: 5000,
      },
      {
        uuid: '11111111-2222-3333-4444-555555555555',
        dataset: 'zones/a/data',
        target: 'backup1',
        startedAt: 1,
        bytes: 24,
      },
    ],
  };
}

describe('renderMetrics', () => {
  const now = 1_700_000_620;
  const parsed = parseExposition(renderMetrics(state(), now));
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    parsed.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  it('names every family zonecopy_*, counters *_total and nothing else *_total', () => {
    assert.ok(parsed.types.size >= 15);
    for (const [family, type] of parsed.types) {
      assert.match(family, /^zonecopy_[a-z0-9_]+$/);
      assert.equal(family.endsWith('_total'), type === 'counter', family);
    }
  });

  it('gives per VM and target the figures an operator alerts on, labelled uuid, alias, policy, target', () => {
    const vm = { uuid: '11111111-2222-3333-4444-555555555555', target: 'backup1' };
    const sample = parsed.samples.find((s) => s.name === 'zonecopy_last_success_timestamp_seconds');
    assert.deepEqual(sample?.labels, { ...vm, alias: hostile, policy: 'continuous' });
    assert.equal(sample?.value, 1_700_000_590);
    assert.equal(value('zonecopy_last_duration_seconds', vm), 2.5);
    assert.equal(value('zonecopy_sent_bytes_total', vm), 123_456_789);
    assert.equal(value('zonecopy_failures_total', vm), 1);
    assert.equal(value('zonecopy_cycle_running', vm), 1);
    assert.equal(value('zonecopy_last_cycle_success', vm), 1);
    // Aged to now from the newest snapshot, not the lag as it was when the file was written.
    assert.equal(value('zonecopy_rpo_lag_seconds', vm), 32);
    assert.equal(value('zonecopy_rpo_lag_worst_seconds', vm), 32);
  });

  it('leaves out what is not known yet instead of exporting a 0 that reads as 1970', () => {
    const vm = { uuid: '66666666-2222-3333-4444-555555555555' };
    assert.equal(value('zonecopy_last_success_timestamp_seconds', vm), undefined);
    assert.equal(value('zonecopy_rpo_lag_seconds', vm), undefined);
    assert.equal(value('zonecopy_failures_total', vm), 3);
    assert.equal(value('zonecopy_last_cycle_success', vm), 0);
    assert.equal(value('zonecopy_cycle_running', vm), 0);
    assert.equal(
      parsed.samples.find((s) => s.name === 'zonecopy_failures_total' && s.labels.uuid === vm.uuid)?.labels.alias,
      '',
    );
  });

  it('gives per policy the cycles and the skipped cycles, and the transfers and service heartbeat', () => {
    assert.equal(value('zonecopy_policy_cycles_total', { policy: 'continuous' }), 40);
    assert.equal(value('zonecopy_policy_skipped_cycles_total', { policy: 'continuous' }), 2);
    assert.equal(value('zonecopy_policy_skipped_cycles_total', { policy: 'nightly' }), 0);
    assert.equal(value('zonecopy_transfers_running'), 2);
    assert.equal(value('zonecopy_transfers_running_bytes'), 1024);
    assert.equal(value('zonecopy_service_heartbeat_timestamp_seconds'), 1_700_000_600);
    assert.equal(value('zonecopy_service_start_time_seconds'), 1_700_000_000);
    assert.equal(value('zonecopy_config_last_reload_success'), 1);
  });

  it('stays valid for a service with nothing configured yet', () => {
    const empty = { ...state(), policies: [], vms: [], transfers: [] };
    const p = parseExposition(renderMetrics(empty, 0));
    assert.equal(p.samples.find((s) => s.name === 'zonecopy_transfers_running')?.value, 0);
  });
});

describe('writeTextfile', () => {
  it('creates the directory and leaves only the finished file, replacing the previous one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zc-metrics-'));
    try {
      const file = join(dir, 'textfile', 'zonecopy.prom');
      await writeTextfile(file, 'a 1\n');
      await writeTextfile(file, 'a 2\n');
      assert.equal(await readFile(file, 'utf8'), 'a 2\n');
      assert.deepEqual(await readdir(join(dir, 'textfile')), ['zonecopy.prom']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('listenMetrics', () => {
  it('refuses an address without a host or a port, saying what it wants', () => {
    for (const bad of ['9464', ':9464', '127.0.0.1', '127.0.0.1:99999', 'host:port', '::1:9464']) {
      assert.throws(() => parseListenAddress(bad), /is not host:port/, bad);
    }
    assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  });

  it('answers GET /metrics with the exposition and anything else with 404', async () => {
    const text = renderMetrics(state(), 1_700_000_620);
    const server = await listenMetrics('127.0.0.1:0', () => text);
    try {
      assert.ok(server.port > 0);
      const get = (path: string, method = 'GET') =>
        new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: server.port, path, method }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
          });
          req.on('error', reject);
          req.end();
        });
      const ok = await get('/metrics');
      assert.equal(ok.status, 200);
      assert.match(ok.type ?? '', /^text\/plain; version=0\.0\.4/);
      assert.equal(ok.body, text);
      parseExposition(ok.body);
      assert.equal((await get('/')).status, 404);
      assert.equal((await get('/metrics', 'POST')).status, 404);
    } finally {
      await server.close();
    }
  });
});
