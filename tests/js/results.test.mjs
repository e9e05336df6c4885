// The presenter view's pure helpers (web/results/csv.js, web/results/series.js): the CSV of the
// aggregate counts, and the trend's points from the tally channel's publications. No server needed.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import RTSync from '../../web/lib/rtsync.js';
import { CSV_COLUMNS, csvFileName, resultsCsv } from '../../web/results/csv.js';
import { addPoints, columns, complete } from '../../web/results/series.js';

const LEVELS = [0, 1, 2, 3].map((id) => ({ id, name: `Level ${id}` }));
const MATRIX = {
  levels: LEVELS,
  rows: [
    { id: 'a', group: 'Group one', name: 'Alpha' },
    { id: 'b', group: 'Group one', name: 'Beta, "quoted"' },
    { id: 'c', group: 'Group two', name: 'Gamma' },
  ],
};

// A tally as the server sends it: every field, every level.
const tally = (total, counts) => new RTSync.Tally({ total, counts });

describe('resultsCsv', () => {
  test('a line per competency and level, percentages of who rated the row summing to 100, a total line', () => {
    const csv = resultsCsv(MATRIX, tally(3, { a: { 0: 1, 1: 1, 2: 1, 3: 0 }, b: { 0: 0, 1: 0, 2: 2, 3: 0 }, c: {} }));
    assert.ok(csv.endsWith('\r\n'));
    const lines = csv.slice(0, -2).split('\r\n');
    assert.equal(lines[0], CSV_COLUMNS.join(','));
    assert.equal(lines[0], 'competency,group,level,count,percent');
    assert.deepEqual(lines.slice(1), [
      // a third each: 34 + 33 + 33, as the page shows them (largest remainder), not 33 × 3
      'Alpha,Group one,0,1,34', 'Alpha,Group one,1,1,33', 'Alpha,Group one,2,1,33', 'Alpha,Group one,3,0,0',
      // quoted as RFC 4180 says
      '"Beta, ""quoted""",Group one,0,0,0', '"Beta, ""quoted""",Group one,1,0,0',
      '"Beta, ""quoted""",Group one,2,2,100', '"Beta, ""quoted""",Group one,3,0,0',
      // a row nobody rated: zeros
      'Gamma,Group two,0,0,0', 'Gamma,Group two,1,0,0', 'Gamma,Group two,2,0,0', 'Gamma,Group two,3,0,0',
      'total,,,3,',
    ]);
  });

  test('an empty tally (nobody has submitted) still lists every competency and level', () => {
    const lines = resultsCsv(MATRIX, tally(0, {})).trim().split('\r\n');
    assert.equal(lines.length, 1 + MATRIX.rows.length * LEVELS.length + 1);
    assert.equal(lines.at(-1), 'total,,,0,');
  });

  test('the file name carries the room and the local time', () => {
    const at = new Date(2026, 11, 3, 9, 5);
    assert.equal(csvFileName(null, at), 'pcm-results-2026-12-03-0905.csv');
    assert.equal(csvFileName('team-a', at), 'pcm-results-team-a-2026-12-03-0905.csv');
  });
});

describe('trend points', () => {
  const pub = (offset, ts, total) => ({ offset, ts, from: 'u', data: { total, counts: {} } });

  test('history and live pushes that overlap give each offset once, in order', () => {
    let points = addPoints([], [pub(3, 3000, 3), pub(4, 4000, 4)]); // a push that came first
    points = addPoints(points, [pub(1, 1000, 1), pub(2, 2000, 2), pub(3, 3000, 3)]); // the history
    assert.deepEqual(points.map((p) => p.offset), [1, 2, 3, 4]);
    assert.deepEqual(columns(points), [[1000, 2000, 3000, 4000], [1, 2, 3, 4]]);
    assert.equal(complete(points), true);
  });

  test('time never goes back, a point without data or time is skipped, a trimmed start is noticed', () => {
    const points = addPoints([], [pub(5, 5000, 2), pub(6, 4000, 3), { offset: 7 }, pub(8, 9000, 0)]);
    assert.deepEqual(columns(points), [[5000, 5000, 9000], [2, 3, 0]]);
    assert.equal(complete(points), false);
    assert.equal(complete([]), true);
  });
});
