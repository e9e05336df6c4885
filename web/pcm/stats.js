// Numbers derived from the live tally for one competency row: how many people chose each level, the
// share of each, and the median level. Pure functions, no DOM.

// The counts of `row` for every level, as an array indexed like `levels`.
export function rowCounts(tally, row, levels) {
  return levels.map((level) => tally.count(row, level.id));
}

// The median level of a row, or null without answers. For an even number of answers it is the midpoint
// of the two middle ones: with levels numbered 0..3 it may be a half (1.5 is "between L1 and L2").
export function median(counts, levels) {
  const n = counts.reduce((a, b) => a + b, 0);
  if (!n) return null;
  // The level of the k-th answer (0-based) in level order.
  const nth = (k) => {
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i];
      if (k < seen) return levels[i].id;
    }
    return levels[levels.length - 1].id;
  };
  return n % 2 ? nth((n - 1) / 2) : (nth(n / 2 - 1) + nth(n / 2)) / 2;
}

// "L2", or "L1–L2" for a median between two levels.
export const levelLabel = (id) => (id == null ? '–' : Number.isInteger(id) ? `L${id}` : `L${Math.floor(id)}–L${Math.ceil(id)}`);

// Whole percentages of `counts` that sum to 100 (largest-remainder rounding: each share rounded down,
// then the points left go to the largest remainders), all 0 without answers.
export function percents(counts) {
  const n = counts.reduce((a, b) => a + b, 0);
  if (!n) return counts.map(() => 0);
  const exact = counts.map((k) => (k * 100) / n);
  const out = exact.map(Math.floor);
  let left = 100 - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => i).sort((i, j) => (exact[j] - out[j]) - (exact[i] - out[i]) || i - j);
  for (const i of order) if (left-- > 0) out[i]++;
  return out;
}

// Where level `you` sits among a row's answers: the whole percentages of answers `below` it, the `same`
// and `above` it (summing to 100), or null without a level or without answers.
export function standing(counts, levels, you) {
  const at = levels.findIndex((level) => level.id === you);
  if (at < 0 || !counts.some((k) => k > 0)) return null;
  const sum = (a, b) => a + b;
  const [below, same, above] = percents([counts.slice(0, at).reduce(sum, 0), counts[at], counts.slice(at + 1).reduce(sum, 0)]);
  return { below, same, above };
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
