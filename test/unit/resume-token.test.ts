import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { executePlan } from '../../src/backup/execute.js';
import { checkResumes, tokenBytes } from '../../src/backup/resume.js';
import { silentLog } from '../../src/log.js';
import type { Step } from '../../src/plan/steps.js';
import type { TransferStrategy } from '../../src/transfer/strategy.js';
import { ScriptedHost } from './scripted-host.js';

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

/** An incremental transfer of zones/NAME into b/NAME from their common snapshot @c. */
const incremental = (name: string): Step => ({
  kind: 'transfer',
  vmDataset: `zones/${name}`,
  source: `zones/${name}`,
  target: `b/${name}`,
  mode: 'incremental',
  sends: [{ from: `zones/${name}@c`, to: `zones/${name}@new` }],
  carriesImage: false,
  common: `b/${name}@c`,
});

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

describe('checking an interrupted receive', () => {
  it('asks the source with a read-only send -nv -t and keeps the snapshot it was for, its guid in decimal', async () => {
    const local = new ScriptedHost([['zfs send -nv -t', { stdout: CONTENTS }]]);
    const remote = new Map([
      ['b/f', { name: 'b/f', type: 'filesystem' as const, guid: '9', snapshots: [], resumeToken: '1-tok' }],
      ['b/g', { name: 'b/g', type: 'filesystem' as const, guid: '8', snapshots: [] }],
    ]);
    const checks = await checkResumes(remote, local);
    assert.deepEqual(
      [...checks],
      [
        [
          'b/f',
          {
            token: '1-tok',
            accepted: true,
            toname: 'zones/f@c',
            toguid: BigInt('0x2543c00b11c03e4').toString(),
            bytes: 0x161430,
            refusal: undefined,
          },
        ],
      ],
    );
    assert.deepEqual(local.commands, [['zfs', 'send', '-nv', '-t', '1-tok']]);
  });
});

describe('resume steps in the executor', () => {
  it('a resume that fails is aborted with receive -A, and its dataset fails this run without its transfer', async () => {
    const remote = new ScriptedHost([], false, 'backup');
    const transfers: string[] = [];
    const strategy: TransferStrategy = {
      name: 'ssh',
      transfer: async (send, receive) => {
        transfers.push(`${send.join(' ')} -> ${receive.at(-1)}`);
        if (send.includes('-t')) throw new Error('broken pipe');
        return { bytes: 5, seconds: 1 };
      },
      describe: () => '',
      close: async () => {},
    };
    const steps: Step[] = [
      { kind: 'resume', source: 'zones/f', target: 'b/f', token: '1-tok', snapshot: 'b/f@c' },
      incremental('f'),
      incremental('g'),
    ];
    const { tallies } = await executePlan(steps, { local: new ScriptedHost([]), remote, strategy, log: silentLog });
    assert.deepEqual(transfers, ['zfs send -t 1-tok -> b/f', 'zfs send -i zones/g@c zones/g@new -> b/g']);
    assert.deepEqual(remote.commands, [['zfs', 'receive', '-A', 'b/f']]);
    assert.match(tallies.get('zones/f')!.error!, /resuming .* b\/f failed: broken pipe; it was aborted/);
    assert.equal(tallies.get('zones/g')!.error, undefined, 'the other dataset goes on');
  });

  it('a resume that succeeds marks its row resumed and counts its bytes with the transfer after it', async () => {
    const strategy: TransferStrategy = {
      name: 'ssh',
      transfer: async (send) => ({ bytes: send.includes('-t') ? 700 : 5, seconds: 1 }),
      describe: () => '',
      close: async () => {},
    };
    const steps: Step[] = [
      { kind: 'resume', source: 'zones/f', target: 'b/f', token: '1-tok', snapshot: 'b/f@c' },
      incremental('f'),
    ];
    const { tallies } = await executePlan(steps, {
      local: new ScriptedHost([]),
      remote: new ScriptedHost([], false, 'backup'),
      strategy,
      log: silentLog,
    });
    assert.deepEqual(
      {
        mode: tallies.get('zones/f')!.mode,
        bytes: tallies.get('zones/f')!.bytes,
        error: tallies.get('zones/f')!.error,
      },
      { mode: 'resumed', bytes: 705, error: undefined },
    );
  });
});
