/**
 * Shared by the fault-injection files (stream cuts in faults-streams, everything else in
 * faults-hosts, so the two can run in separate guests). Every case: non-zero exit, a report
 * naming the failure, nothing lost on either side, no process left behind, and the next run
 * completes with both chains verifying by guid.
 */
import assert from 'node:assert/strict';
import { createFixtures, fixtureUuid } from './fixtures.js';
import {
  resetHosts,
  run,
  sh,
  snapshotsOf,
  target,
  writeConfig,
  zonecopy,
  type Run,
  type TestConfig,
} from './harness.js';

/** The fixture every fault case works on: one OS zone with 3 MB of data in its delegated dataset. */
export const fault = {
  uuid: '',
  datasets: [] as string[],
  config: undefined as unknown as TestConfig,
  round: 0,
  /** Lines of the table the note quotes: case | variants | result. */
  table: [] as string[],
};

export async function setUpFaultFixture(): Promise<void> {
  await resetHosts();
  await createFixtures(['joyent']);
  fault.uuid = await fixtureUuid('joyent');
  fault.datasets = [`zones/${fault.uuid}`, `zones/${fault.uuid}/data`];
  fault.config = writeConfig();
  await sh(`head -c 3M /dev/urandom > /zones/${fault.uuid}/data/big.bin`);
}

export function printFaultTable(): void {
  process.stdout.write(`# fault table:\n${fault.table.map((l) => `#   ${l}`).join('\n')}\n`);
}

/** Source and target agree: the target's newest snapshot is a source snapshot with the same guid. */
export async function assertChainsVerify(): Promise<void> {
  for (const dataset of fault.datasets) {
    const source = await snapshotsOf(dataset);
    const received = await snapshotsOf(target(dataset));
    const newest = received[received.length - 1];
    assert.ok(newest, `${target(dataset)} has no snapshots`);
    assert.equal(
      source.find((s) => s.name === newest.name)?.guid,
      newest.guid,
      `${dataset}: ${newest.name} guid differs`,
    );
    assert.equal(
      (await sh(`zfs get -H -o value receive_resume_token ${target(dataset)}`)).trim(),
      '-',
      `${target(dataset)} still has a resume token`,
    );
  }
}

/**
 * Waits until a process whose command line matches `pattern` runs (pgrep itself, not a shell
 * around it: a shell's command line would contain the pattern and match at once).
 */
export async function waitForProcess(pattern: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await run('pgrep', ['-f', pattern])).code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`no process matching ${pattern} within 60 s`);
}

/** Starts the backup host's copy over: holds released, targets destroyed. */
export async function dropTargets(): Promise<void> {
  const root = target(`zones/${fault.uuid}`);
  await sh(
    `zfs list -H -r -t snapshot -o name ${root} 2>/dev/null | xargs -r zfs holds -H | while IFS="$(printf '\\t')" read -r snap tag _; do zfs release "$tag" "$snap"; done; zfs destroy -r ${root} 2>/dev/null; true`,
  );
}

export async function assertNoLeftovers(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const left = (await sh(`pgrep -a -f '^(mbuffer|zfs send|zfs receive|zfs recv)' || true`)).trim();
    if (!left) return;
    await new Promise((r) => setTimeout(r, 250));
    if (i === 19) assert.fail(`processes left behind: ${left}`);
  }
}

export async function backup(extra: string[] = [], cfg = fault.config): Promise<Run> {
  fault.round++;
  return zonecopy(['backup', fault.uuid, '--groupName', 'fault', '--name', `r${fault.round}`, ...extra], cfg);
}

/** A failed run, then a good one; the invariants checked in between and after. */
export async function failThenRecover(
  failing: () => Promise<Run>,
  expect: RegExp,
  recover: () => Promise<Run> = () => backup(),
): Promise<void> {
  const snapshotsBefore = await Promise.all(fault.datasets.map((d) => snapshotsOf(target(d))));
  const failed = await failing();
  assert.notEqual(failed.code, 0, 'the faulty run must fail');
  assert.match(failed.stdout + failed.stderr, expect);
  await assertNoLeftovers();
  // nothing lost on the backup host: every snapshot it had is still there with its guid
  for (const [i, d] of fault.datasets.entries()) {
    const now = await snapshotsOf(target(d));
    for (const s of snapshotsBefore[i]!)
      assert.ok(
        now.some((n) => n.name === s.name && n.guid === s.guid),
        `${target(d)}@${s.name} was lost`,
      );
  }
  const next = await recover();
  assert.equal(next.code, 0, `the next run must complete: ${next.stderr}${next.stdout}`);
  await assertNoLeftovers();
  await assertChainsVerify();
}
