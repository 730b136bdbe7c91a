import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkImageFile } from '../sim/images.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zonecopy-imgadm-');

describe('imgadm install stand-in (smartos-live imgadm.js installImage)', () => {
  const bytes = Buffer.from('zfs stream bytes');
  const sha1 = createHash('sha1').update(bytes).digest('hex');
  const file = join(scratch(), 'image.zfs');
  writeFileSync(file, bytes);
  const manifest = (entry: { size?: number; sha1?: string; compression?: string }) => ({
    uuid: 'u',
    files: [entry as { size: number; sha1: string; compression: string }],
  });

  it("refuses a file whose size is not the manifest's, before reading it for its sha1", () => {
    assert.throws(() => checkImageFile(manifest({ size: 1 << 20, sha1, compression: 'gzip' }), file), {
      message: `image file size error: manifest says ${1 << 20} bytes, ${file} is ${bytes.length} bytes`,
      code: 'DownloadError',
    });
  });

  it("refuses a file of the right size whose sha1 is not the manifest's", () => {
    assert.throws(
      () => checkImageFile(manifest({ size: bytes.length, sha1: '0'.repeat(40), compression: 'none' }), file),
      {
        message: new RegExp(`^image file checksum \\(sha1\\) error: manifest says "0{40}", .* is "${sha1}"$`),
      },
    );
  });

  it('decompresses by files[0].compression, and knows only what imgadm knows', () => {
    const ok = (compression?: string) =>
      checkImageFile(manifest({ size: bytes.length, sha1, ...(compression ? { compression } : {}) }), file);
    assert.equal(ok('none'), undefined);
    assert.equal(ok(undefined), undefined);
    assert.equal(ok('gzip'), 'gzip');
    assert.equal(ok('bzip2'), 'bzip2');
    assert.equal(ok('xz'), 'xz');
    assert.throws(() => ok('zstd'), /file compression: zstd/);
  });
});
