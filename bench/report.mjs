// Turns one run of bench/compare.sh (bench/results/<time>.json, one JSON line per result) into the
// generated part of docs/benchmarks.md (between <!-- fanout:begin --> and <!-- fanout:end -->) and the
// chart docs/benchmarks-fanout.svg. Every figure is the median over the repetitions of the run.
//   node bench/report.mjs [RESULTS.json]     (default: the newest file in bench/results/)
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const resultsDir = path.join(root, 'bench/results');
const file = process.argv[2] ? path.resolve(process.argv[2])
  : path.join(resultsDir, fs.readdirSync(resultsDir).filter((f) => /^\d{8}T\d{6}Z\.json$/.test(f)).sort().at(-1));
const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = lines.find((l) => l.scenario === 'meta') ?? {};
const rows = lines.filter((l) => l.scenario !== 'meta');

const ORDER = ['rtsync', 'rtsync2', 'rtsync-uring', 'uws', 'redis', 'nchan', 'ws', 'socketio', 'pubnub'];
const NAME = {
  rtsync: 'rtsync', rtsync2: 'rtsync, 2 cores', 'rtsync-uring': 'rtsync, io_uring', uws: 'uWebSockets.js', redis: 'Redis pub/sub', nchan: 'Nchan',
  ws: 'ws', socketio: 'Socket.IO', pubnub: 'rtsync PubNub long poll',
};
const servers = ORDER.filter((s) => rows.some((r) => r.server === s));

const median = (xs) => {
  const v = xs.filter((x) => x !== undefined && x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const reps = (pred) => {
  const by = new Map();
  for (const r of rows.filter(pred)) {
    if (!by.has(r.rep)) by.set(r.rep, []);
    by.get(r.rep).push(r);
  }
  return [...by.values()];
};
// Median over repetitions of f(rows of one repetition).
const perRep = (pred, f) => median(reps(pred).map(f));
const sustained = (r) => !r.saturated && r.lost === 0;

const fmtInt = (x) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const fmtK = (x) => (x === undefined ? '–' : x >= 999.5e3 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${Math.round(x / 1e3)}k` : `${Math.round(x)}`);
const fmtMs = (x) => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x).toString());
const fmtB = (x) => (x === undefined ? '–' : x >= 10240 ? `${(x / 1024).toFixed(0)} KiB` : `${(x / 1024).toFixed(1)} KiB`);
const fmtX = (x) => (x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`);

// ---- derived figures per server ------------------------------------------------------------------

const equalRate = meta.quick ? 100 : 20;
const fig = {};
for (const s of servers) {
  const sw = (sc) => (r) => r.server === s && r.scenario === sc;
  const best = (sc, key) => perRep(sw(sc), (rs) => {
    const ok = rs.filter(sustained);
    return ok.length ? Math.max(...ok.map((r) => r[key])) : undefined;
  });
  const at = (sc, rate, key) => perRep((r) => sw(sc)(r) && r.rate === rate, (rs) => (rs[0] && !rs[0].saturated ? rs[0][key] : undefined));
  const lastIdle = perRep(sw('idle'), (rs) => rs.at(-1)?.connections);
  fig[s] = {
    perCpu64: best('sweep64', 'deliveries_per_cpu_s'),
    peak64: best('sweep64', 'deliveries_per_s'),
    perCpu1k: best('sweep1k', 'deliveries_per_cpu_s'),
    peak1k: best('sweep1k', 'deliveries_per_s'),
    p50eq: at('sweep64', equalRate, 'p50_ms'),
    p99eq: at('sweep64', equalRate, 'p99_ms'),
    p999eq: at('sweep64', equalRate, 'p999_ms'),
    cpuEq: at('sweep64', equalRate, 'server_cpu_util'),
    perCpuEq: at('sweep64', equalRate, 'deliveries_per_cpu_s'),
    genEq: at('sweep64', equalRate, 'gen_cpu_util'),
    perSub: perRep(sw('sweep64'), (rs) => rs[0]?.rss_per_sub_bytes),
    idleConns: lastIdle,
    idleOpen: perRep(sw('idle'), (rs) => rs.at(-1)?.open),
    idleBytes: perRep(sw('idle'), (rs) => rs.at(-1)?.bytes_per_connection),
    idleBytes1k: perRep((r) => sw('idle')(r) && r.connections === 1000, (rs) => rs[0]?.bytes_per_connection),
    idleBytes10k: perRep((r) => sw('idle')(r) && r.connections === 10000, (rs) => rs[0]?.bytes_per_connection),
    perCpuCh: best('channels1000', 'deliveries_per_cpu_s'),
    peakCh: best('channels1000', 'deliveries_per_s'),
    slowP99: perRep(sw('slow'), (rs) => rs[0]?.p99_ms),
    slowLost: perRep(sw('slow'), (rs) => rs[0]?.lost),
    slowClosed: perRep(sw('slow'), (rs) => rs[0]?.slow_closed),
    slowRss: perRep(sw('slow'), (rs) => (rs[0] ? (rs[0].server_rss_kib - rs[0].rss_subscribed_kib) * 1024 / Math.max(1, rs[0].slow) : undefined)),
    slowReaders: perRep(sw('slow'), (rs) => rs[0]?.deliveries_per_s / rs[0]?.offered_per_s),
    churn: perRep(sw('churn'), (rs) => rs[0]?.cycles_per_s),
    churnCpu: perRep(sw('churn'), (rs) => rs[0]?.cpu_us_per_cycle),
    churnErr: perRep(sw('churn'), (rs) => rs[0]?.errors),
    lightP50: perRep(sw('light'), (rs) => rs[0]?.p50_ms),
    lightP99: perRep(sw('light'), (rs) => rs[0]?.p99_ms),
    lightCpu: perRep(sw('light'), (rs) => rs[0]?.server_cpu_util),
  };
}
const R = fig.rtsync ?? {};
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);

// ---- the markdown --------------------------------------------------------------------------------

const md = [];
const table = (head, body) => {
  md.push(`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`);
  for (const row of body) md.push(`| ${row.join(' | ')} |`);
  md.push('');
};
const subs = rows.find((r) => r.scenario === 'sweep64')?.subscribers ?? 10000;
md.push(`Run \`${meta.run}\` (${meta.date}, ${meta.quick ? '**quick mode**, ' : ''}${meta.reps} repetition${meta.reps > 1 ? 's' : ''}, ` +
  `commit ${meta.commit}; load average at the start ${meta.loadavg}). ${meta.cores} cores (${meta.cpu}), Linux ${meta.kernel}, ` +
  `Node ${meta.node}, nginx ${meta.nginx} + Nchan, Redis ${meta.redis}, Socket.IO ${meta.socketio}, ws ${meta.ws}, ` +
  `uWebSockets.js ${meta.uws}. Medians over the repetitions; raw results: \`bench/results/${path.basename(file)}\`.`);
md.push('');
md.push('![deliveries per server CPU-second and p99 at equal load](benchmarks-fanout.svg)');
md.push('');

md.push('### Targets');
md.push('');
const target = (what, goal, value, ok) => [what, goal, value, ok === undefined ? '–' : ok ? 'met' : '**missed**'];
const t = [];
for (const [peer, goal] of [['uws', 1.0], ['redis', 0.8], ['nchan', 10], ['socketio', 20]]) {
  const r = ratio(R.perCpu64, fig[peer]?.perCpu64);
  t.push(target(`deliveries per server CPU-s, ${fmtInt(subs)} subscribers, 64 B: rtsync / ${NAME[peer]}`, `≥ ${goal}×`, fmtX(r), r === undefined ? undefined : r >= goal));
}
{
  const r = ratio(R.p99eq, fig.uws?.p99eq);
  t.push(target(`p99 at equal load (${fmtK(equalRate * subs)} deliveries/s): rtsync / uWebSockets.js`, '≤ 1.2×',
    `${fmtX(r)} (${fmtMs(R.p99eq)} vs ${fmtMs(fig.uws?.p99eq)} ms)`, r === undefined ? undefined : r <= 1.2));
  // twocores runs at the equal load and at a quarter of it (where the generator leaves CPU 1 room).
  for (const [rate, what] of [[equalRate, 'at equal load'], [equalRate / 4, `at ${fmtK(equalRate / 4 * subs)} deliveries/s`]]) {
    const p99 = (server) => perRep((x) => x.scenario === 'equal-load' && x.server === server && x.rate === rate, (rs) => rs[0]?.p99_ms);
    const one = p99('rtsync'), two = p99('rtsync2');
    t.push(target(`p99 ${what}, rtsync on both cores (two I/O threads) vs one`, 'lower', `${fmtMs(two)} vs ${fmtMs(one)} ms`,
      one === undefined || two === undefined ? undefined : two < one));
  }
}
{
  const mem = perRep((x) => x.scenario === 'durable-mem', (rs) => rs[0]?.deliveries_per_s);
  const dur = perRep((x) => x.scenario === 'durable-dur', (rs) => rs[0]?.deliveries_per_s);
  const memc = perRep((x) => x.scenario === 'durable-mem', (rs) => rs[0]?.deliveries_per_cpu_s);
  const durc = perRep((x) => x.scenario === 'durable-dur', (rs) => rs[0]?.deliveries_per_cpu_s);
  const r = ratio(dur, mem);
  t.push(target(`durable / in-memory namespace, 100 publications/s to ${fmtInt(subs)} subscribers (deliveries/s)`, '≥ 0.9×',
    `${fmtX(r)} (${fmtK(dur)} vs ${fmtK(mem)}/s; per CPU-s ${fmtX(ratio(durc, memc))})`, r === undefined ? undefined : r >= 0.9));
}
{
  const U = fig['rtsync-uring'];
  if (U) {
    const r = ratio(U.perCpu64, R.perCpu64);
    t.push(target('Asio backend: io_uring / epoll (the default), deliveries per CPU-s, 64 B', 'the default wins',
      `${fmtX(r)}; idle memory ${fmtB(U.idleBytes)} vs ${fmtB(R.idleBytes)}`, r === undefined ? undefined : r <= 1));
  }
}
t.push(target(`server memory per idle WebSocket connection (${fmtInt(R.idleConns)} connections)`, '≤ 2.5 KB',
  fmtB(R.idleBytes), R.idleBytes === undefined ? undefined : R.idleBytes <= 2560));
t.push(target('idle connections open in one process', '19,500', fmtInt(R.idleOpen), R.idleOpen === undefined ? undefined : R.idleOpen >= 19500));
table(['target', 'goal', 'measured', ''], t);

md.push('### Summary by server');
md.push('');
table(['server', 'deliveries / CPU-s (64 B)', 'peak deliveries/s (64 B)', 'deliveries / CPU-s (1 KB)', `p50 / p99 / p99.9 at ${fmtK(equalRate * subs)}/s (ms)`,
  'server CPU at that load (deliveries / CPU-s)', 'RSS per subscriber', 'idle memory per connection', '1,000 channels: deliveries / CPU-s'],
servers.filter((s) => s !== 'rtsync2' && s !== 'pubnub').map((s) => {
  const f = fig[s];
  return [NAME[s], fmtK(f.perCpu64), fmtK(f.peak64), fmtK(f.perCpu1k),
    f.p99eq === undefined ? 'saturated' : `${fmtMs(f.p50eq)} / ${fmtMs(f.p99eq)} / ${fmtMs(f.p999eq)}`,
    f.cpuEq === undefined ? '–' : `${Math.round(f.cpuEq * 100)}% (${fmtK(f.perCpuEq)})`, fmtB(f.perSub), `${fmtB(f.idleBytes)} (${fmtInt(f.idleOpen)} open)`, fmtK(f.perCpuCh)];
}));

for (const [sc, title] of [['sweep64', '64 B'], ['sweep1k', '1 KB']]) {
  const rates = [...new Set(rows.filter((r) => r.scenario === sc).map((r) => r.rate))].sort((a, b) => a - b);
  if (!rates.length) continue;
  md.push(`### One channel, ${fmtInt(subs)} subscribers, ${title}: delivered/s and p99 by offered load`);
  md.push('');
  md.push('A cell is the delivered rate and the p99 latency; *sat.* marks a step where the server fell behind (under 95% of ' +
    'the offered rate delivered, a loss, or no catch-up within 3 s after the step); the sweep stops there.');
  md.push('');
  const ss = servers.filter((s) => rows.some((r) => r.scenario === sc && r.server === s));
  table(['offered/s', ...ss.map((s) => NAME[s])], rates.map((rate) => [fmtK(rate * subs), ...ss.map((s) => {
    const pred = (r) => r.scenario === sc && r.server === s && r.rate === rate;
    if (!rows.some(pred)) return '';
    const d = perRep(pred, (rs) => rs[0].deliveries_per_s);
    const p = perRep(pred, (rs) => rs[0].p99_ms);
    const sat = perRep(pred, (rs) => (rs[0].saturated ? 1 : 0));
    return `${fmtK(d)}, ${fmtMs(p)} ms${sat >= 0.5 ? ' *sat.*' : ''}`;
  })]));
}

md.push('### Other scenarios');
md.push('');
table(['server', 'idle memory per connection at 1k / 10k / max', '1% stop reading: readers p99, readers lost, stalled cut off, memory per stalled',
  'churn: cycles/s, CPU per cycle', 'light (100 × 10/s): p50 / p99, CPU'],
servers.filter((s) => s !== 'rtsync2' && s !== 'pubnub').map((s) => {
  const f = fig[s];
  return [NAME[s], `${fmtB(f.idleBytes1k)} / ${fmtB(f.idleBytes10k)} / ${fmtB(f.idleBytes)}`,
    f.slowP99 === undefined ? '–' : `${fmtMs(f.slowP99)} ms, ${fmtInt(f.slowLost)}, ${fmtInt(f.slowClosed)}, ${fmtB(f.slowRss)}`,
    f.churn === undefined ? '–' : `${fmtInt(f.churn)}/s, ${fmtInt(f.churnCpu)} µs${f.churnErr ? `, ${fmtInt(f.churnErr)} errors` : ''}`,
    f.lightP99 === undefined ? '–' : `${fmtMs(f.lightP50)} / ${fmtMs(f.lightP99)} ms, ${(f.lightCpu * 100).toFixed(1)}%`];
}));

if (rows.some((r) => r.scenario === 'pubnub')) {
  md.push(`### PubNub long-poll subscribers (rtsync), one channel`);
  md.push('');
  const rates = [...new Set(rows.filter((r) => r.scenario === 'pubnub').map((r) => r.rate))].sort((a, b) => a - b);
  table(['subscribers', 'publications/s', 'delivered/s', 'deliveries / CPU-s', 'p50 / p99 (ms)', 'lost'], rates.map((rate) => {
    const pred = (r) => r.scenario === 'pubnub' && r.rate === rate;
    return [fmtInt(rows.find(pred).subscribers), fmtInt(rate), fmtK(perRep(pred, (rs) => rs[0].deliveries_per_s)),
      fmtK(perRep(pred, (rs) => rs[0].deliveries_per_cpu_s)),
      `${fmtMs(perRep(pred, (rs) => rs[0].p50_ms))} / ${fmtMs(perRep(pred, (rs) => rs[0].p99_ms))}`,
      fmtInt(perRep(pred, (rs) => rs[0].lost))];
  }));
}

// ---- the chart -----------------------------------------------------------------------------------

const chartServers = servers.filter((s) => s !== 'rtsync2' && s !== 'pubnub');
const W = 900, rowH = 26, top = 52, left = 130, panel = 260, gap = 130;
const H = top + chartServers.length * rowH + 30;
const svg = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  `<rect width="${W}" height="${H}" fill="#fff"/>`];
const bars = (x0, title, subtitle, values, fmt, color) => {
  const max = Math.max(...values.filter((v) => v !== undefined), 1e-9);
  svg.push(`<text x="${x0}" y="18" font-weight="bold">${title}</text>`);
  svg.push(`<text x="${x0}" y="34" fill="#555">${subtitle}</text>`);
  chartServers.forEach((s, i) => {
    const y = top + i * rowH, v = values[i];
    if (x0 === left) svg.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${NAME[s]}</text>`);
    if (v === undefined) {
      svg.push(`<text x="${x0 + 4}" y="${y + 15}" fill="#888">saturated / not run</text>`);
      return;
    }
    const w = Math.max(1, (v / max) * panel);
    svg.push(`<rect x="${x0}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${s === 'rtsync' ? '#d9480f' : color}"/>`);
    svg.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${y + 15}">${fmt(v)}</text>`);
  });
};
bars(left, "Deliveries per server CPU-second", `64 B, ${fmtK(subs)} subscribers, one channel; higher is better`,
  chartServers.map((s) => fig[s].perCpu64), fmtK, '#4c6ef5');
bars(left + panel + gap, "p99 publish-to-delivery latency (ms)", `at ${fmtK(equalRate * subs)} deliveries/s to ${fmtK(subs)} subscribers; lower is better`,
  chartServers.map((s) => fig[s].p99eq), fmtMs, '#868e96');
svg.push(`<text x="${left}" y="${H - 8}" fill="#555">run ${meta.run}${meta.quick ? ' (quick mode)' : ''}: server on CPU 0, generator on CPU 1; medians of ${meta.reps} repetition(s)</text>`);
svg.push('</svg>');
fs.writeFileSync(path.join(root, 'docs/benchmarks-fanout.svg'), svg.join('\n') + '\n');

// ---- into docs/benchmarks.md ---------------------------------------------------------------------

const docPath = path.join(root, 'docs/benchmarks.md');
let doc = fs.readFileSync(docPath, 'utf8');
const begin = '<!-- fanout:begin (generated by bench/report.mjs from bench/results; do not edit) -->';
const end = '<!-- fanout:end -->';
const block = `${begin}\n${md.join('\n')}${end}`;
const re = /<!-- fanout:begin[^>]*-->[\s\S]*?<!-- fanout:end -->/;
doc = re.test(doc) ? doc.replace(re, block) : `${doc.trimEnd()}\n\n${block}\n`;
fs.writeFileSync(docPath, doc);
console.log(`report: ${path.relative(root, file)} -> docs/benchmarks.md, docs/benchmarks-fanout.svg`);
