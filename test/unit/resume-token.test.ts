import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenBytes } from '../../src/backup/resume.js';

// `zfs send -nv -t <token>` of a receive cut after 1.5 MB (OpenZFS 2.1 in the test guest); illumos's
// libzfs prints the same nvlist_print lines
const CONTENTS = `resume token contents:
nvlist version: 0
\tfromguid = 0x1b24058ecc6123ad
\tobject = 0x2
\toffset = 0x140000
\tbytes = 0x161430
\ttoguid = 0x2543c00b11c03e4
\ttoname = zones/f@c
send from zones/f@b to zones/f@c estimated size is 1.66M
total estimated size is 1.66M
`;

describe('resume token contents', () => {
  it('reads the bytes that arrived, not the offset or an estimate', () => {
    assert.equal(tokenBytes(CONTENTS), 0x161430);
  });

  it('says nothing when there is no bytes line (an error instead of the contents)', () => {
    assert.equal(
      tokenBytes('cannot resume send: kernel modules must be upgraded to receive this stream.\n'),
      undefined,
    );
  });
});
