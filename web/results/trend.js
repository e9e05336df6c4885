// Submissions over time: the total after every commit, from the tally channel's history (every
// publication the server still keeps: the newest `channels.history_size`, 1000 by default), then each
// new publication as it comes. Drawn by uPlot: small (about 50 KB), kept up, a canvas with no inline
// styles beyond the CSSOM, which the strict CSP allows; its container is one image to screen readers,
// labelled with the same numbers in words.

import uPlot from 'uplot';
import { addPoints, columns, complete } from './series.js';
import { people } from '../pcm/dom.js';

const PAGE = 1000; // the most `history` returns at once

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export class TrendChart {
  // `el` the chart's box (sized by CSS), `caption` the text under it, `channel` the tally channel (its
  // messages are the live points; the Tally that follows it keeps it subscribed).
  constructor({ el, caption, channel }) {
    this.el = el;
    this.caption = caption;
    this.channel = channel;
    this.points = [];
    channel.on('message', (data, pub) => this.add([pub]));
    // Publications were missed and cannot be recovered (a new epoch): read the history again.
    channel.on('stale', () => { this.points = []; this.load().catch((e) => console.warn('trend:', e.message)); });
    new ResizeObserver(() => this.plot && this.plot.setSize(this.size())).observe(el);
  }

  // Reads the kept publications, oldest first, page by page (a page stops early when the connection's
  // queue could not take more: `truncated`), and draws them, or the empty chart.
  async load() {
    let since = 0;
    for (;;) {
      const reply = await this.channel.history({ since, limit: PAGE });
      this.points = addPoints(this.points, reply.pubs);
      if (!reply.pubs.length || (!reply.truncated && reply.pubs.length < PAGE)) break;
      since = reply.pubs[reply.pubs.length - 1].offset;
    }
    this.draw();
    return this;
  }

  add(pubs) {
    this.points = addPoints(this.points, pubs);
    this.draw();
  }

  size() {
    return { width: this.el.clientWidth, height: this.el.clientHeight };
  }

  draw() {
    const data = columns(this.points);
    if (this.plot) this.plot.setData(data);
    else this.plot = new uPlot(this.options(), data, this.el);
    this.el.dataset.points = String(this.points.length);
    const last = this.points[this.points.length - 1];
    const text = last
      ? `${people(last.total)} at ${clock(last.ts)}, since ${clock(this.points[0].ts)}` +
        (complete(this.points) ? '' : ' (older changes are no longer kept)')
      : 'No submissions yet';
    this.caption.textContent = text;
    this.el.setAttribute('aria-label', `People who submitted, over time: ${text}`);
  }

  // Colours and sizes from the page's stylesheet (custom properties), so the canvas matches the text.
  options() {
    const css = getComputedStyle(this.el);
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    const font = `${Math.round(rem * 0.9)}px ${css.fontFamily}`;
    const ink = css.getPropertyValue('--trend-ink').trim();
    const grid = { stroke: css.getPropertyValue('--trend-grid').trim(), width: 1 };
    const line = css.getPropertyValue('--trend-line').trim();
    const axis = { stroke: ink, grid, ticks: grid, font };
    return {
      ...this.size(),
      ms: 1, // the publications' `ts` are milliseconds
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (u, min, max) => [0, Math.max(1, Math.ceil(max * 1.1))] } },
      series: [
        {},
        { label: 'People', stroke: line, width: 3, fill: css.getPropertyValue('--trend-fill').trim(),
          paths: uPlot.paths.stepped({ align: 1 }), points: { show: true, size: 8, fill: line } },
      ],
      axes: [
        { ...axis, space: rem * 6, size: rem * 3 }, // room for uPlot's two-line time labels
        { ...axis, size: rem * 3.5, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
      ],
    };
  }
}
