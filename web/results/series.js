// The trend of a tally channel (`tally:pcm`, or a room's `tally:pcm:ROOM`): every publication there is
// the whole tally after one commit, stamped with the time it was published, so each one is a point of
// "how many people had submitted by then". Pure functions, no DOM.

// Adds publications (`{offset, ts, data: {total}}`, from `history` or live pushes) to `points` and returns
// the points sorted by offset, each offset once: the history read at load and the pushes that arrive
// meanwhile overlap. A point's time never goes back (a server clock stepped back would otherwise give
// the chart an x that decreases, which it cannot draw).
export function addPoints(points, pubs) {
  const byOffset = new Map(points.map((p) => [p.offset, p]));
  for (const pub of pubs) {
    if (pub && pub.data && typeof pub.ts === 'number') {
      byOffset.set(pub.offset, { offset: pub.offset, ts: pub.ts, total: pub.data.total || 0 });
    }
  }
  const sorted = [...byOffset.values()].sort((a, b) => a.offset - b.offset);
  let last = -Infinity;
  return sorted.map((p) => {
    last = Math.max(last, p.ts);
    return p.ts === last ? p : { ...p, ts: last };
  });
}

// The chart's data: `[times (ms), totals]`.
export const columns = (points) => [points.map((p) => p.ts), points.map((p) => p.total)];

// Whether the channel kept every publication since its first: it numbers them from 1, and the oldest
// are dropped past `channels.history_size`, so a first point above 1 means the trend starts later than
// the counting did.
export const complete = (points) => !points.length || points[0].offset === 1;
