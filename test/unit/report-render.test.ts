import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHtml, renderSubject, renderText } from '../../src/report/render.js';
import { formatDuration, staleTargets } from '../../src/report/stale.js';
import type { DatasetResult, VmBackupResult } from '../../src/report/types.js';

const ok: DatasetResult = {
  dataset: 'zones/u',
  target: 'backup/zones/u',
  snapshot: 'daily-1',
  mode: 'incremental',
  bytes: 1536,
  seconds: 1.25,
  result: 'ok',
  rotatedLocal: [],
  rotatedRemote: ['backup/zones/u@daily-0'],
};
function result(over: Partial<VmBackupResult>): VmBackupResult {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    uuid: 'u',
    alias: 'db<01>',
    brand: 'joyent',
    snapshot: 'daily-1',
    backupHost: 'root@b:22',
    startedAt: at,
    finishedAt: at,
    status: 'success',
    datasets: [ok],
    errors: [],
    dryRun: false,
    ...over,
  };
}

describe('report rendering', () => {
  it('fills subject templates', () => {
    assert.equal(renderSubject('✔ [vm.alias] [vm.uuid] [vm.brand]', result({})), '✔ db<01> u joyent');
  });

  it('says completed only on success, and counts failures on partial runs', () => {
    assert.match(renderText(result({})), /completed: 1 dataset/);
    const partial = renderText(
      result({
        status: 'partial',
        datasets: [ok, { ...ok, dataset: 'zones/u/data', result: 'failed', error: 'receive exited 1' }],
      }),
    );
    assert.match(partial, /completed with errors: 1 of 2 dataset\(s\) failed/);
    assert.match(partial, /receive exited 1/);
    const failed = renderText(result({ status: 'failed', datasets: [], errors: ['cannot connect'] }));
    assert.match(failed, /FAILED/);
    assert.doesNotMatch(failed, /completed/);
  });

  it('renders a table with human and exact sizes and escapes HTML', () => {
    const html = renderHtml(result({ datasets: [{ ...ok, dataset: 'zones/<script>&' }] }));
    assert.match(html, /<td>zones\/&lt;script&gt;&amp;<\/td>/);
    assert.match(html, /<td title="1536 bytes">1\.5 KiB<\/td>/);
    assert.match(html, /db&lt;01&gt;/);
    assert.match(renderText(result({})), /^thinned: on root@b:22 backup\/zones\/u@daily-0$/m);
  });

  it("gives an image sent as an origin its own row, apart from the clone's, and names what --rollback destroyed", () => {
    const image: DatasetResult = {
      ...ok,
      dataset: 'zones/img',
      target: 'backup/zones/img',
      snapshot: 'final',
      mode: 'full',
      bytes: 300 << 20,
      image: true,
      rotatedRemote: [],
    };
    const text = renderText(result({ datasets: [{ ...ok, discarded: ['backup/zones/u@manual'] }, image] }));
    assert.match(text, /completed: 1 dataset\(s\) \(and 1 image\(s\) they are cloned from\)/);
    assert.match(text, /zones\/img \(image\)\s+final\s+full\s+300\.0 MiB/);
    assert.match(text, /zones\/u\s+daily-1\s+incremental\s+1\.5 KiB/);
    assert.match(text, /destroyed by --rollback on the backup host: backup\/zones\/u@manual/);
    assert.match(
      renderHtml(result({ datasets: [{ ...ok, discarded: ['backup/zones/u@manual'] }] })),
      /Destroyed by --rollback on the backup host: backup\/zones\/u@manual/,
    );
  });

  it('a run to several targets shows a row per target and counts each dataset once', () => {
    const rows = [
      { ...ok, targetName: 'bk1' },
      { ...ok, targetName: 'offsite', target: 's3-key', result: 'failed' as const, error: 'quota' },
    ];
    const text = renderText(result({ datasets: rows, status: 'partial', backupHost: 'root@b:22, s3://z/p' }));
    assert.match(text, /completed with errors: 1 of 1 dataset\(s\) failed/);
    assert.match(text, /^target +dataset +snapshot/m);
    assert.match(text, /^bk1 +zones\/u +daily-1 +incremental .* ok$/m);
    assert.match(text, /^offsite +zones\/u .* failed +quota$/m);
    assert.match(renderHtml(result({ datasets: rows })), /<th>target<\/th><th>dataset<\/th>.*<td>offsite<\/td>/s);
  });

  it("says what rotation thinned here once and on each target by its name, not 'backup host', in text and HTML", () => {
    const rows = [
      { ...ok, targetName: 'bk1', rotatedLocal: ['zones/u@daily-0'], rotatedRemote: ['backup/zones/u@daily-0'] },
      { ...ok, targetName: 'offsite', rotatedLocal: ['zones/u@daily-0'], rotatedRemote: ['z/p/u@daily-0'] },
    ];
    const text = renderText(result({ datasets: rows }));
    assert.match(
      text,
      /^thinned: here zones\/u@daily-0, on bk1 backup\/zones\/u@daily-0, on offsite z\/p\/u@daily-0$/m,
    );
    assert.doesNotMatch(text, /backup host|rotated/);
    assert.doesNotMatch(renderText(result({ datasets: [{ ...ok, rotatedRemote: [] }] })), /thinned/);
    assert.match(
      renderHtml(result({ datasets: rows })),
      /<p>Thinned: here zones\/u@daily-0, on bk1 backup\/zones\/u@daily-0, on offsite z\/p\/u@daily-0<\/p>/,
      'the HTML mail says it too',
    );
    assert.doesNotMatch(renderHtml(result({ datasets: [{ ...ok, rotatedRemote: [] }] })), /Thinned/);
  });

  it('warns, in text and HTML, of each target behind its staleAfter', () => {
    const behind = [
      { target: 'offsite', snapshot: 'daily-2026-11-01T00:00:00.000Z', ageSeconds: 29 * 86400, staleAfter: 2 * 86400 },
      { target: 'bk<2>', ageSeconds: Infinity, staleAfter: 36 * 3600 },
    ];
    const text = renderText(result({ behind }));
    assert.match(
      text,
      /^warning: offsite is behind: newest common snapshot daily-2026-11-01T00:00:00\.000Z is 29\.0d old \(staleAfter 2d\)$/m,
    );
    assert.match(
      text,
      /^warning: bk<2> is behind: no snapshot in common with a dataset of this VM \(staleAfter 36h\)$/m,
    );
    const html = renderHtml(result({ behind }));
    assert.match(
      html,
      /<strong>Warning:<\/strong> offsite is behind: newest common snapshot daily-2026-11-01T00:00:00\.000Z is 29\.0d old/,
    );
    assert.match(html, /bk&lt;2&gt; is behind/);
    assert.doesNotMatch(renderText(result({})), /behind/);
  });
});

describe('staleTargets', () => {
  const DAY = 86400;
  const NOW = 1_800_000_000;
  const at = (snapshot: string, daysAgo: number) => ({ snapshot, time: NOW - daysAgo * DAY });

  it("judges a target by its oldest dataset's newest common snapshot against its own staleAfter", () => {
    const behind = staleTargets(
      [
        { name: 'bk1', staleAfter: 2 * DAY, newestCommon: [at('d-9', 1), at('d-8', 1.5)] },
        { name: 'offsite', staleAfter: 2 * DAY, newestCommon: [at('d-9', 1), at('d-1', 29)] },
        { name: 'archive', staleAfter: 30 * DAY, newestCommon: [at('d-1', 29)] },
        { name: 'unwatched', newestCommon: [at('d-0', 400)] },
      ],
      NOW,
    );
    assert.deepEqual(behind, [{ target: 'offsite', snapshot: 'd-1', ageSeconds: 29 * DAY, staleAfter: 2 * DAY }]);
  });

  it('a dataset with nothing in common makes the target behind; exactly staleAfter old is not', () => {
    assert.deepEqual(
      staleTargets([{ name: 'offsite', staleAfter: DAY, newestCommon: [at('d-9', 0), undefined] }], NOW),
      [{ target: 'offsite', ageSeconds: Infinity, staleAfter: DAY }],
    );
    assert.deepEqual(staleTargets([{ name: 'offsite', staleAfter: DAY, newestCommon: [at('d-9', 1)] }], NOW), []);
    assert.deepEqual(
      staleTargets([{ name: 'offsite', staleAfter: DAY, newestCommon: [] }], NOW),
      [],
      'no datasets: nothing to judge',
    );
  });

  it('formats staleAfter as it is written', () => {
    assert.deepEqual([2 * DAY, 36 * 3600, 90 * 60, 45, 7 * DAY].map(formatDuration), ['2d', '36h', '90m', '45s', '1w']);
  });
});
