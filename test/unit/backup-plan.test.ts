import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBackup, planSnapshots, type PlanInput } from '../../src/plan/backup-plan.js';
import type { RotateStep, Step, TransferStep } from '../../src/plan/steps.js';
import type { DatasetState } from '../../src/zfs/list.js';

let txg = 100;
function ds(name: string, snaps: Array<[string, string]>, extra: Partial<DatasetState> = {}): DatasetState {
  return {
    name,
    type: 'filesystem',
    guid: `g-${name}`,
    snapshots: snaps.map(([n, guid]) => ({ name: n, guid, createtxg: txg++, creation: txg, userrefs: 0 })),
    ...extra,
  };
}
function states(...list: DatasetState[]): Map<string, DatasetState> {
  return new Map(list.map((d) => [d.name, d]));
}
const VM = 'zones/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
const T = 'backup/zones/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';
function input(over: Partial<PlanInput>): PlanInput {
  return {
    datasets: [VM],
    snapshot: 'daily-new',
    group: 'daily',
    basePath: 'backup/zones',
    local: states(),
    remote: states(ds('backup/zones', [])),
    ...over,
  };
}
const transfers = (steps: Step[]) => steps.filter((s): s is TransferStep => s.kind === 'transfer');
/** Thinning steps that destroy something (the others only say why each snapshot stays). */
const rotations = (steps: Step[]) => steps.filter((s): s is RotateStep => s.kind === 'rotate' && s.destroy.length > 0);

describe('planBackup', () => {
  it('snapshots all datasets of a pool in one atomic step, KVM disks with the root', () => {
    const snaps = planSnapshots(
      input({
        datasets: [VM, `${VM}-disk0`, `${VM}-disk1`, 'other/vol'],
        local: states(ds(VM, []), ds(`${VM}-disk0`, []), ds(`${VM}-disk1`, []), ds('other/vol', [])),
      }),
    ).steps;
    assert.deepEqual(
      snaps.map((s) => [s.pool, s.snapshots]),
      [
        ['zones', [`${VM}@daily-new`, `${VM}-disk0@daily-new`, `${VM}-disk1@daily-new`]],
        ['other', ['other/vol@daily-new']],
      ],
    );
  });

  it('sends in full when the target does not exist', () => {
    const plan = planBackup(input({ local: states(ds(VM, [['daily-a', '1']])) }));
    assert.deepEqual(
      transfers(plan.steps).map((t) => [t.mode, t.target, t.sends]),
      [['full', T, [{ to: `${VM}@daily-new` }]]],
    );
  });

  it('finds the common snapshot by guid, not by name', () => {
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [
            ['daily-a', '1'],
            ['daily-b', '2'],
          ]),
        ),
        remote: states(
          ds('backup/zones', []),
          ds(T, [
            ['daily-a', '1'],
            ['daily-b', 'other-guid'],
          ]),
        ),
      }),
    );
    // daily-b has the same name on both sides but another guid: the newer target snapshot blocks
    assert.equal(transfers(plan.steps).length, 0);
    assert.match(plan.problems[0]!.message, /newer than the last common snapshot daily-a/);
  });

  it('names the ways out of snapshots made on the backup host after the common one, and --rollback destroys exactly those', () => {
    const local = states(
      ds(VM, [
        ['daily-a', '1'],
        ['daily-b', '2'],
      ]),
    );
    const remote = states(
      ds('backup/zones', []),
      ds(T, [
        ['daily-a', '1'],
        ['manual', 'm'],
        ['daily-x', 'x'],
      ]),
    );
    const refused = planBackup(input({ local, remote }));
    assert.equal(transfers(refused.steps).length, 0);
    const message = refused.problems[0]!.message;
    assert.match(message, new RegExp(`${T}@manual, ${T}@daily-x`));
    assert.match(message, /--rollback/);
    assert.match(message, /destroy or rename them on the backup host/);

    const rolled = planBackup(input({ local, remote, rollback: true, remoteRetention: { count: 1 } }));
    const [transfer] = transfers(rolled.steps);
    assert.deepEqual(
      [transfer!.common, transfer!.discard, transfer!.sends],
      [`${T}@daily-a`, ['manual', 'daily-x'], [{ from: `${VM}@daily-a`, to: `${VM}@daily-new`, intermediates: true }]],
    );
    // rotation counts what will be there after the rollback: daily-x is gone already, not rotated
    assert.deepEqual(
      rotations(rolled.steps).map((r) => r.destroy),
      [['daily-a', 'daily-b']],
    );
  });

  it('makes new targets and unprotected old ones read-only and unmountable after their transfer, images too, and leaves protected ones alone', () => {
    const image = 'zones/img';
    const plan = planBackup(
      input({
        datasets: [VM, `${VM}/data`, `${VM}/old`, `${VM}-disk0`],
        local: states(
          ds(VM, [['daily-a', '1']]),
          ds(`${VM}/data`, [['daily-a', '2']]),
          ds(`${VM}/old`, [['daily-a', '3']]),
          ds(`${VM}-disk0`, [], { type: 'volume', origin: `${image}@final` }),
          ds(image, [['final', 'img']], { type: 'volume' }),
        ),
        remote: states(
          ds('backup/zones', []),
          ds(T, [['daily-a', '1']], { guarded: true }),
          ds(`${T}/data`, [['daily-a', '2']], { guarded: false }),
          ds(`${T}/old`, [['daily-a', '3']], { guarded: true }),
        ),
      }),
    );
    const protect = plan.steps.filter((s) => s.kind === 'protect');
    assert.equal(protect.length, 1);
    const kinds = plan.steps.map((s) => s.kind);
    assert.ok(kinds.indexOf('protect') > kinds.lastIndexOf('transfer'), 'after every transfer');
    assert.deepEqual((protect[0] as Extract<Step, { kind: 'protect' }>).targets, [
      { dataset: `${VM}/data`, target: `${T}/data`, type: 'filesystem' },
      { dataset: `${VM}-disk0`, target: `${T}-disk0`, type: 'volume' },
      { dataset: image, target: 'backup/zones/img', type: 'volume' },
    ]);
  });

  it('refuses (never -F) when names match but no guid does', () => {
    const plan = planBackup(
      input({
        local: states(ds(VM, [['daily-a', '1']])),
        remote: states(ds('backup/zones', []), ds(T, [['daily-a', '999']])),
      }),
    );
    assert.equal(transfers(plan.steps).length, 0);
    assert.match(plan.problems[0]!.message, /no snapshot in common \(compared by guid\)/);
  });

  it('sends intermediate group snapshots with -I from the newest common one', () => {
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [
            ['daily-a', '1'],
            ['daily-b', '2'],
            ['daily-c', '3'],
          ]),
        ),
        remote: states(ds('backup/zones', []), ds(T, [['daily-a', '1']])),
      }),
    );
    assert.deepEqual(transfers(plan.steps)[0]!.sends, [
      { from: `${VM}@daily-a`, to: `${VM}@daily-new`, intermediates: true },
    ]);
  });

  it("estimates what a stream adds only when it goes from the newest snapshot (the dataset's written)", () => {
    const remote = states(ds('backup/zones', []), ds(T, [['daily-a', '1']]));
    const fromNewest = planBackup(input({ local: states(ds(VM, [['daily-a', '1']], { written: 4096 })), remote }));
    assert.equal(transfers(fromNewest.steps)[0]!.added, 4096);
    // with intermediates the stream carries more than the newest snapshot adds: no estimate
    const withIntermediates = planBackup(
      input({
        local: states(
          ds(
            VM,
            [
              ['daily-a', '1'],
              ['daily-b', '2'],
            ],
            { written: 4096 },
          ),
        ),
        remote,
      }),
    );
    assert.equal(transfers(withIntermediates.steps)[0]!.added, undefined);
    const full = planBackup(input({ local: states(ds(VM, [['daily-a', '1']], { written: 4096 })) }));
    assert.equal(transfers(full.steps)[0]!.added, undefined);
  });

  it('keeps foreign snapshots local by chaining -i over the group snapshots', () => {
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [
            ['daily-a', '1'],
            ['vmsnap-x', '2'],
            ['daily-b', '3'],
          ]),
        ),
        remote: states(ds('backup/zones', []), ds(T, [['daily-a', '1']])),
      }),
    );
    assert.deepEqual(transfers(plan.steps)[0]!.sends, [
      { from: `${VM}@daily-a`, to: `${VM}@daily-b` },
      { from: `${VM}@daily-b`, to: `${VM}@daily-new` },
    ]);
  });

  it('sends a clone origin snapshot first, then the clone incrementally from it', () => {
    const image = 'zones/e44ed3e0-910b-11ed-a5d4-00151714048c';
    const plan = planBackup(
      input({
        local: states(ds(VM, [], { origin: `${image}@final` }), ds(image, [['final', 'img-guid']])),
      }),
    );
    const [origin, clone] = transfers(plan.steps);
    assert.deepEqual(
      [origin!.source, origin!.target, origin!.carriesImage, origin!.sends],
      [image, 'backup/zones/e44ed3e0-910b-11ed-a5d4-00151714048c', true, [{ to: `${image}@final` }]],
    );
    assert.deepEqual(
      [clone!.source, clone!.cloneOrigin, clone!.sends],
      [
        VM,
        'backup/zones/e44ed3e0-910b-11ed-a5d4-00151714048c@final',
        [{ from: `${image}@final`, to: `${VM}@daily-new` }],
      ],
    );
  });

  it('does not resend an origin whose snapshot is on the target with the same guid (second VM of one image)', () => {
    const image = 'zones/img';
    const plan = planBackup(
      input({
        local: states(ds(VM, [], { origin: `${image}@final` }), ds(image, [['final', 'img-guid']])),
        remote: states(ds('backup/zones', []), ds('backup/zones/img', [['final', 'img-guid']])),
      }),
    );
    assert.equal(transfers(plan.steps).length, 1);
    assert.equal(transfers(plan.steps)[0]!.cloneOrigin, 'backup/zones/img@final');
  });

  it('checks the origin snapshot, not just its dataset (smartcopy defect 6)', () => {
    const image = 'zones/img';
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [], { origin: `${image}@${'vm2'}` }),
          ds(image, [
            ['final', 'img-guid'],
            ['vm2', 'vm2-guid'],
          ]),
        ),
        remote: states(ds('backup/zones', []), ds('backup/zones/img', [['final', 'img-guid']])),
      }),
    );
    const clone = transfers(plan.steps).find((t) => !t.carriesImage)!;
    assert.equal(clone.mode, 'full');
    assert.equal(clone.cloneOrigin, undefined);
    assert.match(plan.warnings[0]!, /without vm2/);
  });

  it('rotates only its own group on the backup host, exactly, keeping the newest N', () => {
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [
            ['daily-a', '1'],
            ['daily2-x', '9'],
            ['daily-b', '2'],
            ['daily-c', '3'],
          ]),
        ),
        remote: states(
          ds('backup/zones', []),
          ds(T, [
            ['daily-0', '0'],
            ['daily-a', '1'],
            ['daily-b', '2'],
            ['daily-c', '3'],
          ]),
        ),
        remoteRetention: { count: 3 },
      }),
    );
    assert.deepEqual(
      rotations(plan.steps).map((r) => [r.on, r.destroy]),
      [[T, ['daily-0', 'daily-a']]],
    );
  });

  it('allows a remote limit above the local one (no mirror deletion)', () => {
    const plan = planBackup(
      input({
        local: states(ds(VM, [['daily-c', '3']])),
        remote: states(
          ds('backup/zones', []),
          ds(T, [
            ['daily-a', '1'],
            ['daily-b', '2'],
            ['daily-c', '3'],
          ]),
        ),
        remoteRetention: { count: 5 },
      }),
    );
    assert.deepEqual(rotations(plan.steps), [], "the local limit is the run loop's, not the backup host's");
  });

  it('never rotates the new snapshot, the newest common one, even with limit 0', () => {
    const plan = planBackup(
      input({
        local: states(ds(VM, [['daily-a', '1']])),
        remote: states(ds('backup/zones', []), ds(T, [['daily-a', '1']])),
        remoteRetention: { count: 0 },
      }),
    );
    for (const r of rotations(plan.steps)) assert.ok(!r.destroy.includes('daily-new'));
  });

  it('refuses before snapshotting when a dataset named by vmadm is missing in ZFS', () => {
    const plan = planSnapshots(input({ datasets: [VM, `${VM}/data`], local: states(ds(VM, [])) }));
    assert.deepEqual(plan.steps, []);
    assert.match(plan.problems[0]!.message, /zones\/.*\/data, but ZFS has no such dataset/);
  });

  it('creates a missing parent on the target, structurally (zones2 is not under zones)', () => {
    const plan = planBackup(
      input({
        basePath: 'zones2/backup',
        datasets: [`${VM}/data`],
        local: states(ds(`${VM}/data`, [])),
        remote: states(),
      }),
    );
    assert.deepEqual(
      plan.steps.filter((s) => s.kind === 'create-parent'),
      [{ kind: 'create-parent', dataset: `zones2/backup/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44` }],
    );
  });

  it('moves the hold to the new snapshot on both sides and lets rotation take the released one', () => {
    const local = ds(VM, [
      ['daily-a', '1'],
      ['daily-b', '2'],
    ]);
    local.snapshots[1]!.userrefs = 1;
    const remote = ds(T, [
      ['daily-a', '1'],
      ['daily-b', '2'],
    ]);
    remote.snapshots[1]!.userrefs = 1;
    const plan = planBackup(
      input({
        local: states(local),
        remote: states(ds('backup/zones', []), remote),
        remoteRetention: { count: 1 },
        holds: {
          tag: 'zonecopy:b:daily',
          localHeld: new Set([`${VM}@daily-b`]),
          remoteHeld: new Set([`${T}@daily-b`]),
        },
      }),
    );
    const holdSteps = plan.steps
      .filter((s) => s.kind === 'hold' || s.kind === 'release')
      .map((s) =>
        s.kind === 'hold' || s.kind === 'release' ? [s.kind, s.side, s.snapshots.map((e) => e.snapshot)] : [],
      );
    assert.deepEqual(holdSteps, [
      ['hold', 'local', [`${VM}@daily-new`]],
      ['hold', 'remote', [`${T}@daily-new`]],
      ['release', 'local', [`${VM}@daily-b`]],
      ['release', 'remote', [`${T}@daily-b`]],
    ]);
    assert.deepEqual(
      rotations(plan.steps).map((r) => r.destroy),
      [['daily-a', 'daily-b']],
    );
    assert.deepEqual([...plan.releasing], [`${VM}@daily-b`], 'the run loop may take the local one');
    const firstRotation = plan.steps.findIndex((s) => s.kind === 'rotate');
    const lastHold = plan.steps.map((s) => s.kind).lastIndexOf('release');
    assert.ok(lastHold < firstRotation, 'holds move before anything is destroyed');
  });

  it('an interrupted receive the source accepts is resumed first, and the new snapshot goes from the resumed one', () => {
    const local = states(
      ds(VM, [
        ['daily-a', '1'],
        ['daily-b', '2'],
      ]),
    );
    const remote = states(ds('backup/zones', []), ds(T, [['daily-a', '1']], { resumeToken: '1-tok' }));
    const resumes = new Map([
      [T, { token: '1-tok', accepted: true, toname: `${VM}@daily-b`, toguid: '2', bytes: 4096 }],
    ]);
    const plan = planBackup(input({ local, remote, resumes, remoteRetention: { count: 2 } }));
    assert.deepEqual(plan.steps[0], {
      kind: 'resume',
      source: VM,
      target: T,
      token: '1-tok',
      snapshot: `${T}@daily-b`,
      arrived: 4096,
    });
    const [transfer] = transfers(plan.steps);
    assert.deepEqual(
      [transfer!.common, transfer!.sends],
      [`${T}@daily-b`, [{ from: `${VM}@daily-b`, to: `${VM}@daily-new`, intermediates: false }]],
    );
    assert.deepEqual(
      rotations(plan.steps).map((r) => r.destroy),
      [['daily-a']],
      'rotation counts the resumed snapshot as there',
    );
    assert.deepEqual(plan.problems, []);
  });

  it('an interrupted receive the source refuses is aborted first, and the rest planned as without it', () => {
    const local = states(
      ds(VM, [
        ['daily-a', '1'],
        ['daily-b', '2'],
      ]),
      ds(`${VM}/data`, [['daily-b', '3']]),
    );
    const remote = states(
      ds('backup/zones', []),
      ds(T, [['daily-a', '1']], { resumeToken: '1-gone' }),
      // a full receive cut short: aborting it leaves no target
      ds(`${T}/data`, [], { resumeToken: '1-full' }),
    );
    const refused = { accepted: false, refusal: 'cannot resume send: snapshot does not exist' };
    const resumes = new Map([
      [T, { token: '1-gone', ...refused }],
      [`${T}/data`, { token: '1-full', ...refused }],
    ]);
    const plan = planBackup(input({ datasets: [VM, `${VM}/data`], local, remote, resumes }));
    assert.deepEqual(plan.steps.slice(0, 2), [
      { kind: 'abort-resume', source: VM, target: T },
      { kind: 'abort-resume', source: `${VM}/data`, target: `${T}/data` },
    ]);
    assert.deepEqual(
      transfers(plan.steps).map((t) => [t.target, t.mode, t.sends]),
      [
        [T, 'incremental', [{ from: `${VM}@daily-a`, to: `${VM}@daily-new`, intermediates: true }]],
        [`${T}/data`, 'full', [{ to: `${VM}/data@daily-new` }]],
      ],
    );
    assert.deepEqual(plan.problems, []);
    assert.match(
      plan.warnings.join('\n'),
      /resume token of .* no longer matches the source \(cannot resume send: snapshot does not exist\); aborting it/,
    );
  });

  it('names the VM datasets a hold step leaves out, so a -r hold never reaches them', () => {
    const local = states(ds(VM, [['daily-a', '1']]), ds(`${VM}/data`, [['daily-a', '2']]));
    const remote = states(
      ds('backup/zones', []),
      ds(T, [['daily-a', '1']]),
      ds(`${T}/data`, [['daily-a', '2']], { resumeToken: '1-abc' }),
    );
    const plan = planBackup(
      input({
        datasets: [VM, `${VM}/data`],
        local,
        remote,
        holds: { tag: 't', localHeld: new Set(), remoteHeld: new Set() },
      }),
    );
    const holds = plan.steps
      .filter((s) => s.kind === 'hold')
      .map((s) => (s.kind === 'hold' ? [s.side, s.snapshots.map((e) => e.snapshot), s.others] : []));
    assert.deepEqual(holds, [
      ['local', [`${VM}@daily-new`], [`${VM}/data`]],
      ['remote', [`${T}@daily-new`], [`${T}/data`]],
    ]);
  });

  it('never rotates a snapshot that someone else holds', () => {
    const local = ds(VM, [
      ['daily-a', '1'],
      ['daily-b', '2'],
    ]);
    const remote = ds(T, [
      ['daily-a', '1'],
      ['daily-b', '2'],
    ]);
    remote.snapshots[0]!.userrefs = 1;
    const plan = planBackup(
      input({
        local: states(local),
        remote: states(ds('backup/zones', []), remote),
        remoteRetention: { count: 1 },
        holds: { tag: 't', localHeld: new Set(), remoteHeld: new Set() },
      }),
    );
    assert.deepEqual(
      rotations(plan.steps).map((r) => r.destroy),
      [['daily-b']],
    );
  });
});

describe('planBackup: encrypted datasets go raw', () => {
  const DATA = `${VM}/data`;
  const TDATA = `${T}/data`;
  const secret = { encrypted: true, encryptionRoot: DATA };
  const plain = { encrypted: false };
  const base = ds('backup/zones', [], plain);
  const sendsOf = (plan: ReturnType<typeof planBackup>) => transfers(plan.steps).map((t) => [t.target, t.sends]);

  it('sends an encrypted dataset in full with -w and a plain one without, on a backup host that knows encryption', () => {
    const plan = planBackup(
      input({
        datasets: [VM, DATA],
        local: states(ds(VM, [], plain), ds(DATA, [], secret)),
        remote: states(base),
      }),
    );
    assert.deepEqual(sendsOf(plan), [
      [T, [{ to: `${VM}@daily-new` }]],
      [TDATA, [{ to: `${DATA}@daily-new`, raw: true }]],
    ]);
    assert.deepEqual(plan.warnings, []);
  });

  it('keeps a target received raw (its own encryption root there) raw, -I and chained -i alike', () => {
    const local = ds(
      DATA,
      [
        ['daily-a', '1'],
        ['daily-b', '2'],
      ],
      secret,
    );
    const received = ds(TDATA, [['daily-a', '1']], { encrypted: true, encryptionRoot: TDATA });
    const remote = states(base, ds(T, [], plain), received);
    const plan = planBackup(input({ datasets: [DATA], local: states(local), remote }));
    assert.deepEqual(sendsOf(plan), [
      [TDATA, [{ from: `${DATA}@daily-a`, to: `${DATA}@daily-new`, intermediates: true, raw: true }]],
    ]);
    local.snapshots.push({ name: 'vmsnap-x', guid: '3', createtxg: txg++, creation: txg, userrefs: 0 });
    const chained = planBackup(input({ datasets: [DATA], local: states(local), remote }));
    assert.deepEqual(
      transfers(chained.steps)[0]!.sends.map((s) => s.raw),
      [true, true],
    );
    assert.deepEqual([...plan.warnings, ...chained.warnings], []);
  });

  it('sends an encrypted clone origin raw, then the clone raw from it', () => {
    const image = 'zones/img';
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [], { origin: `${image}@final`, encrypted: true, encryptionRoot: 'zones' }),
          ds(image, [['final', 'img-guid']], { encrypted: true, encryptionRoot: 'zones' }),
        ),
        remote: states(base),
      }),
    );
    assert.deepEqual(sendsOf(plan), [
      ['backup/zones/img', [{ to: `${image}@final`, raw: true }]],
      [T, [{ from: `${image}@final`, to: `${VM}@daily-new`, raw: true }]],
    ]);
  });

  it("sends a new encrypted clone decrypted when its origin's copy was received decrypted (a raw stream cannot build on it)", () => {
    const image = 'zones/img';
    const secretImage = { encrypted: true, encryptionRoot: 'zones' };
    const plan = planBackup(
      input({
        local: states(
          ds(VM, [], { origin: `${image}@final`, ...secretImage }),
          ds(image, [['final', 'img-guid']], secretImage),
        ),
        remote: states(base, ds('backup/zones/img', [['final', 'img-guid']], plain)),
      }),
    );
    assert.deepEqual(sendsOf(plan), [[T, [{ from: `${image}@final`, to: `${VM}@daily-new` }]]]);
    assert.deepEqual(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!, /backup\/zones\/img on the backup host was received decrypted/);
  });

  it('keeps sending decrypted into a target received decrypted, and warns once per dataset how to start over raw', () => {
    const received = (name: string, source: string, over: Partial<DatasetState>) =>
      ds(name, [['daily-a', `${source}-1`]], over);
    const plan = planBackup(
      input({
        datasets: [VM, DATA],
        local: states(
          ds(VM, [['daily-a', `${VM}-1`]], { ...secret, encryptionRoot: VM }),
          ds(DATA, [['daily-a', `${DATA}-1`]], secret),
        ),
        remote: states(
          base,
          // before raw sends: decrypted, and decrypted then encrypted again with the backup host's key
          received(T, VM, { encrypted: false }),
          received(TDATA, DATA, { encrypted: true, encryptionRoot: 'backup/zones' }),
        ),
      }),
    );
    assert.deepEqual(sendsOf(plan), [
      [T, [{ from: `${VM}@daily-a`, to: `${VM}@daily-new`, intermediates: false }]],
      [TDATA, [{ from: `${DATA}@daily-a`, to: `${DATA}@daily-new`, intermediates: false }]],
    ]);
    assert.equal(plan.warnings.length, 2);
    for (const [i, target] of [T, TDATA].entries()) {
      assert.match(plan.warnings[i]!, new RegExp(`${target} on the backup host was received decrypted`));
      assert.match(plan.warnings[i]!, new RegExp(`rename or destroy ${target} there`));
    }
  });

  it('sends decrypted, as before, to a backup host whose ZFS has no encryption (its listing lacks the property)', () => {
    const plan = planBackup(
      input({ datasets: [DATA], local: states(ds(DATA, [], secret)), remote: states(ds('backup/zones', [])) }),
    );
    assert.deepEqual(sendsOf(plan), [[TDATA, [{ to: `${DATA}@daily-new` }]]]);
    assert.match(plan.warnings.join(), /ZFS on the backup host has no encryption/);
  });
});
