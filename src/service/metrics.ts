/**
 * The service's state as Prometheus metrics (text exposition format 0.0.4): written as a file for
 * node_exporter's textfile collector, and served on `--metrics-listen host:port`. Names follow the
 * Prometheus conventions: one `zonecopy_` prefix, base units in the name, counters end in `_total`.
 */
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { ServiceState, VmTargetState } from './state.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
}
interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

/** The whole exposition for one moment; `now` (Unix seconds) ages the RPO lag since the state was written. */
export function renderMetrics(state: ServiceState, now: number): string {
  const families: Family[] = [];
  const family = (name: string, type: Family['type'], help: string, samples: Sample[]): void => {
    families.push({ name: `zonecopy_${name}`, type, help, samples });
  };
  const perVm = (pick: (vm: VmTargetState) => number | undefined): Sample[] =>
    state.vms.flatMap((vm) => {
      const value = pick(vm);
      return value === undefined ? [] : [{ labels: vmLabels(vm), value }];
    });

  family(
    'last_success_timestamp_seconds',
    'gauge',
    'Unix time the last successful cycle of this VM to this target ended.',
    perVm((vm) => vm.lastSuccessAt),
  );
  family(
    'last_duration_seconds',
    'gauge',
    'Wall seconds of the last cycle of this VM to this target.',
    perVm((vm) => vm.lastDurationSeconds),
  );
  family(
    'last_cycle_success',
    'gauge',
    '1 if the last cycle of this VM to this target succeeded, 0 if it failed or partly failed.',
    perVm((vm) => (vm.lastStatus === undefined ? undefined : vm.lastStatus === 'success' ? 1 : 0)),
  );
  family(
    'newest_snapshot_timestamp_seconds',
    'gauge',
    'Unix time the newest snapshot this target holds of this VM was taken.',
    perVm((vm) => vm.newestSnapshotAt),
  );
  family(
    'sent_bytes_total',
    'counter',
    'Bytes sent of this VM to this target since the service started.',
    perVm((vm) => vm.bytesSentTotal),
  );
  family(
    'failures_total',
    'counter',
    'Failed or partly failed cycles of this VM to this target since the service started.',
    perVm((vm) => vm.failuresTotal),
  );
  family(
    'rpo_lag_seconds',
    'gauge',
    'Age of the newest snapshot this target holds of this VM: the data that would be lost now.',
    perVm((vm) => rpoLag(vm, now)),
  );
  family(
    'rpo_lag_worst_seconds',
    'gauge',
    'Worst RPO lag of this VM to this target seen since the service started.',
    perVm((vm) => worstOf(vm.rpoWorstSeconds, rpoLag(vm, now))),
  );
  family(
    'cycle_running',
    'gauge',
    '1 while a cycle of this VM to this target runs.',
    perVm((vm) => (vm.running ? 1 : 0)),
  );

  const perPolicy = (pick: (p: ServiceState['policies'][number]) => number | undefined): Sample[] =>
    state.policies.flatMap((p) => {
      const value = pick(p);
      return value === undefined ? [] : [{ labels: { policy: p.name }, value }];
    });
  family(
    'policy_cycles_total',
    'counter',
    'Cycles this policy started.',
    perPolicy((p) => p.cycles),
  );
  family(
    'policy_skipped_cycles_total',
    'counter',
    'Cycles of this policy skipped because the previous cycle of a VM was still running.',
    perPolicy((p) => p.skipped),
  );
  family(
    'policy_next_cycle_timestamp_seconds',
    'gauge',
    'Unix time the next cycle of this policy is due.',
    perPolicy((p) => p.nextAt),
  );

  family('transfers_running', 'gauge', 'Send streams in flight.', [{ labels: {}, value: state.transfers.length }]);
  family('transfers_running_bytes', 'gauge', 'Bytes sent so far by the send streams in flight.', [
    { labels: {}, value: state.transfers.reduce((sum, t) => sum + t.bytes, 0) },
  ]);

  family('service_heartbeat_timestamp_seconds', 'gauge', "Unix time the service's scheduler loop last ran.", [
    { labels: {}, value: state.heartbeat },
  ]);
  family('service_start_time_seconds', 'gauge', 'Unix time the service started.', [
    { labels: {}, value: state.startedAt },
  ]);
  family(
    'config_last_reload_success',
    'gauge',
    '1 if the last configuration (re)load succeeded, 0 if it was refused and the previous one kept.',
    [{ labels: {}, value: state.config.reloadError === undefined ? 1 : 0 }],
  );
  family('config_last_reload_timestamp_seconds', 'gauge', 'Unix time the configuration in use was loaded.', [
    { labels: {}, value: state.config.loadedAt },
  ]);

  return families.map(renderFamily).join('');
}

function vmLabels(vm: VmTargetState): Labels {
  return { uuid: vm.uuid, alias: vm.alias ?? '', policy: vm.policy, target: vm.target };
}

function rpoLag(vm: VmTargetState, now: number): number | undefined {
  if (vm.newestSnapshotAt !== undefined) return Math.max(0, now - vm.newestSnapshotAt);
  return vm.rpoLagSeconds;
}

function worstOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function renderFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) lines.push(`${f.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
  return lines.join('\n') + '\n';
}

function renderLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Label values escape backslash, double quote and line feed; HELP text escapes backslash and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * Writes the exposition for node_exporter's textfile collector: into a hidden temporary file of the same
 * directory (the collector reads only `*.prom`), then renamed over the target, so a scrape never reads
 * half a file.
 */
export async function writeTextfile(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** `host:port` or `[v6]:port`; a missing host is refused, so the endpoint never listens on every address by accident. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address.trim());
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? NaN : Number(m[3]);
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new Error(
      `metrics listen address "${address}" is not host:port (e.g. 127.0.0.1:9464, [::1]:9464, or port 0 for any free port)`,
    );
  }
  return { host, port };
}

/** Serves `GET /metrics` on the given host and port only; every other request is a 404. */
export async function listenMetrics(
  address: string,
  render: () => string,
): Promise<{ port: number; close(): Promise<void> }> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try GET /metrics\n');
      return;
    }
    let body: string;
    try {
      body = render();
    } catch (err) {
      res
        .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`rendering metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`metrics endpoint cannot listen on ${address}: ${err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
