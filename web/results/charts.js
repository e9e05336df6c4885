// One chart per competency: a bar per level with its count and its share of the people who rated the
// competency, and the median marked under the axis, all from the live tally.
//
// Drawn with the DOM and CSS, not a charting library: the numbers must be text (large on a projector,
// read out by screen readers, checked by axe), four bars need no scales or axes, and the bar heights are
// one CSS variable each (`--share`, set through the CSSOM, which the strict CSP allows).
//
// Bars whose count changed flash once (an outline with `prefers-reduced-motion`). The first tally is
// drawn as it is, before the cards are in the page: nothing flashes or grows on load.

import { changedCells, levelLabel, median, percents, rowCounts } from '../pcm/stats.js';
import { h } from '../pcm/dom.js';

const FLASH_MS = 1600;

export class CompetencyCharts {
  // `el` the board (the cards go first, before what it holds already, in place of its `.loading`),
  // `matrix` as in pcm/matrix.json, `tally` an RTSync.Tally that has been fetched.
  constructor({ el, matrix, tally }) {
    this.el = el;
    this.matrix = matrix;
    this.tally = tally;
    this.shown = null; // the counts on screen; null before the first drawing, which is not a change
    this.cards = {};
    tally.on('change:counts', () => this.update());
  }

  render() {
    const cards = this.matrix.rows.map((row) => this.card(row));
    this.update();
    const loading = this.el.querySelector('.loading');
    if (loading) loading.remove();
    this.el.prepend(...cards);
    return this;
  }

  card(row) {
    const cols = this.matrix.levels.map((level) => {
      const count = h('span', { class: 'count' });
      const share = h('span', { class: 'pct' });
      const bar = h('span', { class: 'bar' });
      // Read out as "L1, n² (Level 1): 3 people, 30%"; the visible label is the short "L1".
      const li = h('li', { class: 'col', dataset: { level: level.id } },
        h('span', { class: 'visually-hidden' }, `${levelLabel(level.id)}, ${level.name}: `),
        h('span', { class: 'nums' }, count, h('span', { class: 'visually-hidden' }, ', '), share),
        h('span', { class: 'track', 'aria-hidden': 'true' }, bar),
        h('span', { class: 'lvl', 'aria-hidden': 'true' }, levelLabel(level.id)));
      return { li, count, share, bar };
    });
    const mark = h('span', { class: 'median-mark', 'aria-hidden': 'true' });
    const answers = h('span', { class: 'answers' });
    const mid = h('strong', { class: 'median' });
    const el = h('article', { class: 'comp', dataset: { id: row.id }, 'aria-labelledby': `comp-${row.id}` },
      h('h3', { id: `comp-${row.id}` }, row.name),
      h('div', { class: 'plot' },
        h('ol', { class: 'cols', 'aria-label': `${row.name}: people per level` }, cols.map((c) => c.li)),
        mark),
      h('p', { class: 'foot' }, answers, mid));
    this.cards[row.id] = { cols, mark, answers, mid };
    return el;
  }

  update() {
    const counts = this.tally.get('counts') || {};
    const changed = this.shown ? changedCells(this.shown, counts) : new Set();
    this.shown = counts;
    const { levels } = this.matrix;
    for (const row of this.matrix.rows) {
      const card = this.cards[row.id];
      const perLevel = rowCounts(this.tally, row.id, levels);
      const n = perLevel.reduce((a, b) => a + b, 0);
      const shares = percents(perLevel);
      const m = median(perLevel, levels);
      // Heights relative to the largest count, as the main page's distribution charts: the shape reads
      // at a glance, the percentages above say how much.
      const max = Math.max(1, ...perLevel);
      levels.forEach((level, i) => {
        const col = card.cols[i];
        col.count.textContent = String(perLevel[i]);
        col.share.textContent = `${shares[i]}%`;
        col.bar.style.setProperty('--share', (perLevel[i] / max).toFixed(3));
        // A median between two levels marks both.
        col.li.classList.toggle('median', m != null && Math.abs(level.id - m) < 1);
        if (changed.has(`${row.id}/${level.id}`)) flash(col.li);
      });
      // Level ids are 0, 1, 2, …, one column each: the mark sits under the median's column, or between
      // two columns for a median between two levels.
      card.mark.hidden = m == null;
      if (m != null) card.mark.style.setProperty('--at', String((m + 0.5) / levels.length));
      card.answers.textContent = n ? `${n} rated` : 'No answers yet';
      card.mid.textContent = n ? `median ${levelLabel(m)}` : '';
    }
  }
}

function flash(el) {
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
  clearTimeout(el.flashTimer);
  el.flashTimer = setTimeout(() => el.classList.remove('flash'), FLASH_MS);
}
