// Numbers derived from the live tally for one competency row: how many people chose each level, the
// share of each, and the median level. Pure functions, no DOM.

// The counts of `row` for every level, as an array indexed like `levels`.
export function rowCounts(tally, row, levels) {
  return levels.map((level) => tally.count(row, level.id));
}

// The median level of a row (the lower median for an even number of answers), or null without answers.
export function median(counts, levels) {
  const n = counts.reduce((a, b) => a + b, 0);
  if (!n) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen * 2 >= n) return levels[i].id;
  }
  return levels[levels.length - 1].id;
}

// Which cells changed between two tallies' counts: a Set of "row/level" keys.
export function changedCells(before, after) {
  const changed = new Set();
  const rows = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  for (const row of rows) {
    const a = (before && before[row]) || {};
    const b = (after && after[row]) || {};
    for (const level of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if ((a[level] || 0) !== (b[level] || 0)) changed.add(`${row}/${level}`);
    }
  }
  return changed;
}
