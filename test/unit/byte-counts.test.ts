import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summaryBytes } from '../../src/transfer/mbuffer.js';
import { receivedBytes } from '../../src/transfer/ssh.js';

/** Where the stream never passes through zonecopy, its size comes from the programs' own closing lines. */

describe("mbuffer's summary", () => {
  it('gives the bytes sent, in whatever unit mbuffer chose', () => {
    assert.equal(
      summaryBytes(
        '\rin @ 40.1 MiB/s, out @ 40.1 MiB/s, 1.0 GiB total, buffer   3% full\nsummary:  1.0 kiByte in  0.0sec - average of 85.1 kiB/s\n',
      ),
      1024,
    );
    assert.equal(summaryBytes('summary:  624 Byte in  0.1sec - average of 6.1 kiB/s\n'), 624);
    assert.equal(summaryBytes('summary: 1024 MiByte in 25.3sec - average of 40.5 MiB/s\n'), 2 ** 30);
    assert.equal(summaryBytes('summary:  1.50 GiByte in 40.2sec - average of 38.1 MiB/s\n'), 1.5 * 2 ** 30);
  });

  it('is 0 when mbuffer printed none (killed before its end)', () => {
    assert.equal(
      summaryBytes('mbuffer: error: outputThread: error writing to 127.0.0.2:20001: Connection reset by peer\n'),
      0,
    );
  });
});

describe("zfs receive -v's closing line", () => {
  it('gives the bytes received, as OpenZFS and illumos print them', () => {
    const openzfs =
      'receiving full stream of zones/a/data@s1 into backup/zones/a/data@s1\nreceived 558K stream in 1 seconds (558K/sec)\n';
    assert.equal(receivedBytes(openzfs), 558 * 1024);
    assert.equal(receivedBytes('received 1.00GB stream in 25 seconds (41.0MB/sec)\n'), 2 ** 30);
    assert.equal(receivedBytes('received 312B stream in 1 seconds (312B/sec)\n'), 312);
    assert.equal(receivedBytes('received 2.5M stream in 3 seconds (853K/sec)\n'), 2.5 * 2 ** 20);
  });

  it('is 0 when the receive failed before its end', () => {
    assert.equal(
      receivedBytes('receiving full stream of a@s into b@s\ncannot receive new filesystem stream: incomplete stream\n'),
      0,
    );
  });
});
