import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { executePlan } from '../../src/backup/execute.js';
import { LocalHost } from '../../src/host/local.js';
import type { Step } from '../../src/plan/steps.js';
import { incrementalStep, quietHost } from './transfer-steps.js';
import type { TransferStrategy } from '../../src/transfer/strategy.js';
import { silentLog } from '../../src/log.js';
import { streamMetadata, type StoredStream } from '../../src/s3/keys.js';
import { uploadStream } from '../../src/s3/upload.js';
import { activeStreams, currentStream, inStream, startStream } from '../../src/transfer/progress.js';
import { pump } from '../../src/transfer/pump.js';
import { bufferProcess, FakeObjectStore } from './fake-object-store.js';
import { scratchDirectory } from './scratch.js';

/** The registry of streams in flight: what `backup` on a terminal, `status --watch` and the metrics show. */

const journals = scratchDirectory('zc-progress-');

describe('the registry of streams in flight', () => {
  it('lists a stream from its start to its end, with the bytes added so far', () => {
    const a = startStream({ uuid: 'u1', dataset: 'zones/u1', target: 'backup1', estimatedBytes: 100 }, 1000);
    const b = startStream({ dataset: 'zones/u2', target: 's3' }, 2000);
    a.add(30);
    a.add(12);
    assert.deepEqual(
      activeStreams().map((s) => [s.dataset, s.bytes, s.estimatedBytes, s.startedAt]),
      [
        ['zones/u1', 42, 100, 1000],
        ['zones/u2', 0, undefined, 2000],
      ],
    );
    a.end();
    a.end();
    assert.deepEqual(
      activeStreams().map((s) => s.dataset),
      ['zones/u2'],
    );
    b.end();
    assert.deepEqual(activeStreams(), []);
  });

  it('hands out copies, so a reader cannot change the counts', () => {
    const a = startStream({ dataset: 'zones/x', target: 't' });
    a.add(5);
    activeStreams()[0]!.bytes = 999;
    assert.equal(activeStreams()[0]!.bytes, 5);
    a.end();
  });

  it('ends a stream opened by inStream even when its work fails', async () => {
    await assert.rejects(
      inStream({ dataset: 'zones/y', target: 't' }, async () => {
        assert.equal(activeStreams().length, 1);
        assert.ok(currentStream());
        throw new Error('receive failed');
      }),
      /receive failed/,
    );
    assert.deepEqual(activeStreams(), []);
    assert.equal(currentStream(), undefined);
  });
});

describe('live byte counts', () => {
  it('pump counts into the stream inStream opened around it, while the stream flows (a real local pipeline)', async () => {
    const local = new LocalHost(false);
    const seen: number[] = [];
    const result = await inStream({ uuid: 'u', dataset: 'zones/u', target: 'backup1' }, async () => {
      const source = local.spawn([['sh', '-c', 'head -c 100000 /dev/zero; sleep 0.6; head -c 50000 /dev/zero']]);
      source.stdin.end();
      const sink = local.spawn([['sh', '-c', 'cat > /dev/null']]);
      const watcher = setInterval(() => seen.push(activeStreams()[0]?.bytes ?? -1), 50);
      try {
        return await pump(source, sink, 'test stream');
      } finally {
        clearInterval(watcher);
      }
    });
    assert.equal(result.bytes, 150000);
    assert.ok(seen.includes(100000), `the first 100000 bytes were visible while the stream waited: ${seen.join(',')}`);
    assert.deepEqual(activeStreams(), []);
  });

  it('pump outside any named stream counts nothing into the registry (restores)', async () => {
    const local = new LocalHost(false);
    const source = local.spawn([['head', '-c', '1000', '/dev/zero']]);
    source.stdin.end();
    const sink = local.spawn([['sh', '-c', 'cat > /dev/null']]);
    const flowing = pump(source, sink, 'restore');
    const during = activeStreams().length;
    assert.equal((await flowing).bytes, 1000);
    assert.equal(during, 0);
  });

  it('an S3 upload counts as it reads the stream, named by its VM, dataset and bucket, with the -nP estimate', async () => {
    const MiB = 1024 * 1024;
    const data = randomBytes(11 * MiB);
    const seen: Array<{ uuid?: string; dataset: string; target: string; bytes: number; estimatedBytes?: number }> = [];
    class Watching extends FakeObjectStore {
      override async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer) {
        seen.push(...activeStreams());
        return super.uploadPart(key, uploadId, partNumber, body);
      }
    }
    const stream: StoredStream = {
      key: 'p/vm/u/daily-1',
      dataset: 'zones/0f1e/disk0',
      snapshot: 'daily-1',
      guid: '1',
      createtxg: 1,
      vm: '0f1e',
      compression: 'none',
      encrypted: false,
    };
    const result = await uploadStream(new Watching(), {
      key: stream.key,
      metadata: streamMetadata(stream),
      fingerprint: 'f',
      estimatedBytes: data.length,
      concurrency: 1,
      pipeline: [['zfs', 'send', 'zones/0f1e/disk0@daily-1']],
      spawn: () => bufferProcess(data),
      stateDirectory: journals(),
      log: silentLog,
    });
    assert.equal(result.bytes, data.length);
    assert.ok(seen.length >= 2);
    assert.deepEqual(
      { ...seen[0]!, bytes: 0, startedAt: 0 },
      {
        uuid: '0f1e',
        dataset: 'zones/0f1e/disk0',
        target: 's3://fake/p',
        bytes: 0,
        estimatedBytes: data.length,
        startedAt: 0,
      },
    );
    assert.ok(seen[0]!.bytes >= 5 * MiB && seen[0]!.bytes < data.length, String(seen[0]!.bytes));
    assert.deepEqual(activeStreams(), []);
  });
});

describe('backup names its streams', () => {
  it('each transfer of a plan is listed under its VM, dataset and target name, with the planned size (else zfs send -nP) as estimate', async () => {
    const ran: string[] = [];
    const host = (label: string) =>
      quietHost(label, (argv) => {
        ran.push(argv.join(' '));
        return argv.slice(0, 3).join(' ') === 'zfs send -nP' ? 'full\tx\t1234\nsize\t1234\n' : '';
      });
    const during: unknown[] = [];
    const strategy: TransferStrategy = {
      name: 'ssh',
      transfer: async () => {
        currentStream()!.add(7);
        during.push(...activeStreams().map((s) => ({ ...s, startedAt: 0 })));
        return { bytes: 7, seconds: 0 };
      },
      describe: () => '',
      close: async () => {},
    };
    const step = (name: string, added?: number) => incrementalStep(name, { added });
    const steps: Step[] = [{ kind: 'protect', targets: [] }, step('vm1', 5_000_000_000), step('vm1-disk0')];
    await executePlan(steps, {
      local: host('local'),
      remote: host('remote'),
      strategy,
      log: silentLog,
      streams: { uuid: 'vm1', target: 'backup1' },
    });
    assert.deepEqual(during, [
      { uuid: 'vm1', dataset: 'zones/vm1', target: 'backup1', estimatedBytes: 5_000_000_000, bytes: 7, startedAt: 0 },
      { uuid: 'vm1', dataset: 'zones/vm1-disk0', target: 'backup1', estimatedBytes: 1234, bytes: 7, startedAt: 0 },
    ]);
    // sized only where the plan had no `written` figure
    assert.deepEqual(
      ran.filter((c) => c.includes('-nP')),
      ['zfs send -nP -i zones/vm1-disk0@a zones/vm1-disk0@b'],
    );
    assert.deepEqual(activeStreams(), []);
  });
});
