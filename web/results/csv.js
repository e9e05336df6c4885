// The aggregate counts as CSV, for "Download CSV" on the presenter view (docs/pcm.md, *Presenter
// view*): one line per competency and level with its count and its whole percentage of the people who
// rated that competency (the page's numbers: a row's percentages sum to 100), then a total line with the
// number of people who submitted. It is made from the tally alone, which holds counts and never anyone's
// answers, so no individual answer or user id can end up in the file. Pure functions, no DOM.

import { percents, rowCounts } from '../pcm/stats.js';

export const CSV_COLUMNS = ['competency', 'group', 'level', 'count', 'percent'];

// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.
const field = (value) => {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

// `matrix` as in pcm/matrix.json; `tally` an RTSync.Tally (or anything with `count(row, level)` and
// `get('total')`). Lines end with CRLF, as RFC 4180 says and spreadsheets expect.
export function resultsCsv(matrix, tally) {
  const lines = [CSV_COLUMNS];
  for (const row of matrix.rows) {
    const counts = rowCounts(tally, row.id, matrix.levels);
    const shares = percents(counts);
    matrix.levels.forEach((level, i) => lines.push([row.name, row.group, level.id, counts[i], shares[i]]));
  }
  lines.push(['total', '', '', tally.get('total') || 0, '']);
  return lines.map((line) => line.map(field).join(',')).join('\r\n') + '\r\n';
}

// "pcm-results-2026-12-03-1405.csv", or with a room "pcm-results-team-a-2026-12-03-1405.csv" (room
// names are safe in a file name: A-Za-z0-9_.@-). Local time, as the presenter reads the clock.
export function csvFileName(room, date) {
  const pad = (n) => String(n).padStart(2, '0');
  const stamp = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}`;
  return `pcm-results-${room ? `${room}-` : ''}${stamp}.csv`;
}
