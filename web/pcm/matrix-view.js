// The matrix itself: an ARIA grid with one row per competency (grouped), one column per level, and a
// small distribution chart at the end of each row.
//
// * Clicking a level cell (or Enter/Space on it) chooses that level: the cells up to it are shaded, as
//   in the original matrix. Clicking the competency's name (or Delete) clears the row.
// * Each cell's foot shows how many people chose it; its background is the heatmap (share of the row's
//   answers), and a popover says "k of N people, p%" while the pointer is on the cell or the keyboard's
//   focus is (a click does not leave it open, and it never takes a click meant for the cell under it).
//   A row's percentages sum to 100. Cells whose count changes flash briefly.
// * The level the person submitted carries a "yours" mark, so a reload shows what counts for them.
//
// Keyboard: one cell is in the tab order (a roving tabindex); arrow keys move, Home goes to the row's
// name and End to its last level (the chart after it is read, not chosen; with Ctrl: of the grid),
// Page Up/Down jump five rows.

import _ from 'underscore';
// Bootstrap's modules one by one (its ES sources), so that the bundle holds only the components used.
import Popover from 'bootstrap/js/src/popover.js';
import { h, s, replace, people } from './dom.js';
import { changedCells, levelLabel, median, percents, rowCounts, standing } from './stats.js';
import { View } from './view.js';

// Bootstrap's popover with a <div> for its header instead of an <h3>, which would break the page's
// heading order; it is put in <main> so that it is inside a landmark.
const POPOVER = '<div class="popover" role="tooltip"><div class="popover-arrow"></div>'
  + '<div class="popover-header"></div><div class="popover-body"></div></div>';

// Whether the device has a pointer that hovers (not a touch screen).
const hoverable = window.matchMedia('(hover: hover)');

// Columns: 0 is the competency's name, 1..levels are the levels, then the distribution.
export const MatrixView = View.extend({

  tagName: 'table',
  className: 'pcm-grid',
  attributes: { role: 'grid', 'aria-label': 'Programmer Competency Matrix', 'aria-describedby': 'grid-help' },

  events: {
    'click td.cell': 'onCellClick',
    'click th.rowname': 'onNameClick',
    'keydown': 'onKeydown',
    'focusin [data-col]': 'onFocusIn',
  },

  // Options: `matrix` ({levels, rows}), `selection` (the person's current choices, row id -> level id),
  // `submitted` (their submitted choices, same shape), `tally` (an RTSync.Tally).
  initialize: function(options) {
    _.extend(this, _.pick(options, 'matrix', 'selection', 'submitted', 'tally'));
    this.levels = this.matrix.levels;
    this.rows = this.matrix.rows;
    this.lastCol = this.levels.length + 1;
    this.focus = { row: 0, col: 1 };
    this.cells = {};
    this.popovers = [];
    this.listenTo(this.selection, 'change', this.renderSelection);
    this.listenTo(this.submitted, 'change', this.renderSubmitted);
    this.listenTo(this.tally, 'change:counts', this.renderCounts);
  },

  // Builds the whole table once; later changes only touch classes, text and one CSS variable.
  render: function() {
    const head = h('thead', null, h('tr', { role: 'row' },
      h('th', { role: 'columnheader', class: 'col-name', scope: 'col' }, 'Competency'),
      this.levels.map((level) => h('th', { role: 'columnheader', class: 'col-level', scope: 'col' },
        h('span', { class: 'level-name' }, level.name))),
      h('th', { role: 'columnheader', class: 'col-dist', scope: 'col' },
        h('span', null, 'Everyone'),
        h('span', { class: 'dist-key', 'aria-hidden': 'true' },
          h('span', { class: 'key-you' }, 'you'), h('span', { class: 'key-median' }, 'median'))),
    ));
    const groups = _.groupBy(this.rows, 'group');
    const bodies = _.map(groups, (rows, group) => h('tbody', { role: 'rowgroup', class: 'group' },
      h('tr', { role: 'row', class: 'group-row' },
        h('th', { role: 'rowheader', colspan: this.lastCol + 1, scope: 'colgroup' }, group)),
      rows.map((row) => this.renderRow(row))));
    replace(this.el, head, bodies);
    this.setTabStop(this.focus.row, this.focus.col);
    this.renderSelection();
    this.renderSubmitted();
    this.renderCounts();
    return this;
  },

  renderRow: function(row) {
    const index = this.rows.indexOf(row);
    const name = h('th', { role: 'rowheader', class: 'rowname', tabindex: -1, scope: 'row',
      dataset: { row: index, col: 0 }, 'aria-label': `${row.name}: press Enter to clear this row` },
    h('span', { class: 'name' }, row.name),
    h('span', { class: 'clear-hint', 'aria-hidden': 'true' }, 'clear'));
    const cells = this.levels.map((level, i) => {
      const foot = h('span', { class: 'count' });
      const td = h('td', { role: 'gridcell', class: 'cell', tabindex: -1, 'aria-selected': 'false',
        dataset: { row: index, col: i + 1, level: level.id, levelName: level.name } },
      h('span', { class: 'desc' }, row.cells[i]),
      h('span', { class: 'foot' }, h('span', { class: 'mine' }, '✓ yours'), foot));
      td.pcmCount = foot;
      td.pcmPopover = new Popover(td, {
        trigger: 'manual', placement: 'top', container: 'main', html: false,
        fallbackPlacements: ['bottom', 'left', 'right'], title: level.name, content: 'No answers yet',
        customClass: 'pcm-popover', template: POPOVER,
      });
      this.popovers.push(td.pcmPopover);
      this.popoverOn(td);
      return td;
    });
    const chart = h('span', { class: 'chart' });
    const caption = h('span', { class: 'caption' });
    const place = h('span', { class: 'standing', 'data-stat': 'standing' });
    const dist = h('td', { role: 'gridcell', class: 'dist', tabindex: -1, dataset: { row: index, col: this.lastCol } },
      chart, caption, place);
    this.cells[row.id] = { name, cells, dist, chart, caption, place };
    return h('tr', { role: 'row', class: 'comp', dataset: { id: row.id } }, name, cells, dist);
  },

  // The popover shows while a mouse is over the cell (not after a tap: a phone shows the counts in the
  // card) or while the keyboard's focus is on it (`:focus-visible`: a click focuses the cell too, and
  // the popover must not stay open after it). It lets clicks through (CSS), so a click aimed at the
  // cell above lands there.
  popoverOn: function(td) {
    const popover = td.pcmPopover;
    const wanted = () => (hoverable.matches && td.matches(':hover')) || td.matches(':focus-visible');
    td.addEventListener('mouseenter', () => { if (hoverable.matches) popover.show(); });
    td.addEventListener('mouseleave', () => { if (!td.matches(':focus-visible')) popover.hide(); });
    td.addEventListener('focus', () => { if (td.matches(':focus-visible')) popover.show(); });
    td.addEventListener('blur', () => { if (!wanted()) popover.hide(); });
    // A hide's fade that ends after the pointer came back removes the popover shown meanwhile.
    td.addEventListener('hidden.bs.popover', () => { if (wanted()) popover.show(); });
  },

  // ### Rendering state

  renderSelection: function() {
    for (const row of this.rows) {
      const chosen = this.selection.get(row.id);
      const { name, cells } = this.cells[row.id];
      name.classList.toggle('has-choice', chosen != null);
      this.levels.forEach((level, i) => {
        const td = cells[i];
        td.classList.toggle('in-range', chosen != null && level.id <= chosen);
        td.classList.toggle('chosen', chosen === level.id);
        td.setAttribute('aria-selected', String(chosen === level.id));
      });
      this.renderDistribution(row);
    }
  },

  renderSubmitted: function() {
    for (const row of this.rows) {
      const mine = this.submitted.get(row.id);
      this.levels.forEach((level, i) => this.cells[row.id].cells[i].classList.toggle('submitted', mine === level.id));
    }
  },

  // Counts, heat and popovers; the cells whose count changed since the last tally flash. Until the first
  // tally is in, the counts are the model's empty default (a loaded tally lists every field): nothing
  // changed then, it just arrived.
  renderCounts: function() {
    const counts = this.tally.get('counts') || {};
    const changed = _.isEmpty(this.shownCounts) ? new Set() : changedCells(this.shownCounts, counts);
    this.shownCounts = counts;
    for (const row of this.rows) {
      const perLevel = rowCounts(this.tally, row.id, this.levels);
      const n = perLevel.reduce((a, b) => a + b, 0);
      const shown = percents(perLevel);
      this.levels.forEach((level, i) => {
        const td = this.cells[row.id].cells[i];
        const k = perLevel[i];
        const share = n ? k / n : 0;
        td.pcmCount.textContent = n ? `${k} · ${shown[i]}%` : '0';
        td.style.setProperty('--share', share.toFixed(3));
        const text = n ? `${k} of ${people(n)}, ${shown[i]}%` : 'No answers yet';
        td.pcmPopover.setContent({ '.popover-header': level.name, '.popover-body': text });
        td.setAttribute('aria-description', text);
        if (changed.has(`${row.id}/${level.id}`)) this.flash(td);
      });
      this.renderDistribution(row, perLevel);
    }
  },

  // A small inline SVG: one bar per level (height by share), the person's own level in green, and a
  // triangle under the median level; under it, where the person's level sits: the share of everyone's
  // answers below it and above it.
  renderDistribution: function(row, perLevel) {
    perLevel = perLevel || rowCounts(this.tally, row.id, this.levels);
    const n = perLevel.reduce((a, b) => a + b, 0);
    const mid = median(perLevel, this.levels);
    const you = this.selection.get(row.id);
    const { chart, caption, place, dist } = this.cells[row.id];
    const bw = 18, gap = 7, top = 4, height = 28;
    const width = this.levels.length * (bw + gap) - gap;
    const max = Math.max(1, ...perLevel);
    const bars = this.levels.map((level, i) => {
      const bh = n ? Math.max(1.5, (perLevel[i] / max) * height) : 1.5;
      const x = i * (bw + gap);
      return s('rect', { x, y: top + height - bh, width: bw, height: bh, rx: 2,
        class: 'bar' + (you === level.id ? ' you' : '') + (mid === level.id ? ' median' : '') });
    });
    const markers = [];
    if (mid != null) {
      // Level ids are 0, 1, 2, …, so a median between two levels sits between their bars.
      const cx = mid * (bw + gap) + bw / 2;
      markers.push(s('path', { d: `M${cx - 5} ${top + height + 9}L${cx} ${top + height + 3}L${cx + 5} ${top + height + 9}Z`, class: 'median-mark' }));
    }
    const label = this.levels.map((l, i) => `${l.name}: ${people(perLevel[i])}`).join('; ');
    const svg = s('svg', { viewBox: `0 0 ${width} ${top + height + 10}`, width, height: top + height + 10,
      role: 'img', 'aria-label': `Distribution. ${label}` },
    s('line', { x1: 0, x2: width, y1: top + height + 0.5, y2: top + height + 0.5, class: 'axis' }), bars, markers);
    replace(chart, svg);
    replace(caption,
      h('span', { class: you == null ? 'cap-you none' : 'cap-you' }, `you ${levelLabel(you)}`), ' · ',
      h('span', { class: 'cap-median' }, n ? `median ${levelLabel(mid)}` : 'no answers'));
    const where = standing(perLevel, this.levels, you);
    place.textContent = where ? `${where.below}% below you, ${where.above}% above` : '';
    const levelName = (id) => (Number.isInteger(id) ? this.levels.find((l) => l.id === id).name
      : `between ${levelName(Math.floor(id))} and ${levelName(Math.ceil(id))}`);
    // A description, not a label: the visible caption stays the cell's name.
    dist.setAttribute('aria-description', `${row.name}: ${n ? `median ${levelName(mid)}` : 'no answers yet'}; ` +
      `yours: ${you == null ? 'not chosen' : levelName(you)}` +
      (where ? `; ${where.below}% of the answers are below yours, ${where.same}% the same, ${where.above}% above` : ''));
  },

  flash: function(td) {
    td.classList.remove('flash');
    void td.offsetWidth; // restart the animation
    td.classList.add('flash');
    clearTimeout(td.flashTimer);
    td.flashTimer = setTimeout(() => td.classList.remove('flash'), 1600);
  },

  // ### Choosing

  choose: function(rowIndex, col) {
    const row = this.rows[rowIndex];
    if (!row) return;
    if (col === 0) this.selection.unset(row.id);
    else if (col <= this.levels.length) this.selection.set(row.id, this.levels[col - 1].id);
  },

  onCellClick: function(e, td) {
    this.choose(Number(td.dataset.row), Number(td.dataset.col));
  },

  onNameClick: function(e, th) {
    this.choose(Number(th.dataset.row), 0);
  },

  // ### Keyboard

  onKeydown: function(e) {
    if (e.altKey || e.metaKey) return;
    let { row, col } = this.focus;
    const last = this.rows.length - 1;
    switch (e.key) {
      case 'ArrowRight': col = Math.min(this.lastCol, col + 1); break;
      case 'ArrowLeft': col = Math.max(0, col - 1); break;
      case 'ArrowDown': row = Math.min(last, row + 1); break;
      case 'ArrowUp': row = Math.max(0, row - 1); break;
      case 'PageDown': row = Math.min(last, row + 5); break;
      case 'PageUp': row = Math.max(0, row - 5); break;
      case 'Home': col = 0; if (e.ctrlKey) row = 0; break;
      case 'End': col = this.levels.length; if (e.ctrlKey) row = last; break;
      case 'Enter':
      case ' ':
        e.preventDefault();
        this.choose(row, col);
        return;
      case 'Delete':
      case 'Backspace':
        e.preventDefault();
        this.choose(row, 0);
        return;
      default:
        return;
    }
    e.preventDefault();
    this.moveFocus(row, col);
  },

  cellAt: function(row, col) {
    const r = this.rows[row] && this.cells[this.rows[row].id];
    if (!r) return null;
    if (col === 0) return r.name;
    if (col === this.lastCol) return r.dist;
    return r.cells[col - 1];
  },

  // The roving tabindex: exactly one cell has tabindex 0.
  setTabStop: function(row, col) {
    const old = this.cellAt(this.focus.row, this.focus.col);
    if (old) old.tabIndex = -1;
    this.focus = { row, col };
    const cell = this.cellAt(row, col);
    if (cell) cell.tabIndex = 0;
    return cell;
  },

  moveFocus: function(row, col) {
    const cell = this.setTabStop(row, col);
    if (cell) cell.focus();
  },

  // Focus on the first level of the next row without a choice after the focused one (wrapping around),
  // scrolled to the middle of the screen: on a phone the matrix is a long page of cards. False when
  // every row has a choice.
  nextUnrated: function() {
    const n = this.rows.length;
    for (let k = 1; k <= n; k++) {
      const i = (this.focus.row + k) % n;
      if (this.selection.has(this.rows[i].id)) continue;
      const cell = this.setTabStop(i, 1);
      cell.scrollIntoView({ block: 'center' });
      cell.focus({ preventScroll: true });
      return true;
    }
    return false;
  },

  onFocusIn: function(e, cell) {
    const row = Number(cell.dataset.row);
    const col = Number(cell.dataset.col);
    if (row !== this.focus.row || col !== this.focus.col) this.setTabStop(row, col);
  },

  remove: function() {
    for (const p of this.popovers) p.dispose();
    return View.prototype.remove.call(this);
  },
});
