// GET /metrics: Prometheus text that follows what the server does (connections, subscriptions,
// publications, deliveries, socket writes and their batch sizes, publish-to-flush latency, store commits,
// their latency and batch sizes).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, cleanupAll, httpRequest, startServer, waitFor } from './lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(cleanupAll);

function parse(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    values.set(name, Number(value));
  }
  return values;
}

async function scrape() {
  const res = await httpRequest(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return parse(res.body);
}

test('counters and gauges follow connections, subscriptions, publications and deliveries', async () => {
  const before = await scrape();
  const a = await Client.connect(server.wsUrl);
  const b = await Client.connect(server.wsUrl);
  await a.call('sub', { ch: 'metrics' });
  await b.call('sub', { ch: 'metrics' });
  for (let i = 0; i < 5; i++) await a.call('pub', { ch: 'metrics', data: { i } });
  await a.messagesUntil('metrics', 5);
  await b.messagesUntil('metrics', 5);

  const m = await scrape();
  assert.equal(m.get('rtsync_connections'), 2);
  assert.equal(m.get('rtsync_subscriptions'), 2);
  assert.equal(m.get('rtsync_publications_total') - (before.get('rtsync_publications_total') ?? 0), 5);
  assert.equal(m.get('rtsync_deliveries_total') - (before.get('rtsync_deliveries_total') ?? 0), 10);
  assert.equal(m.get('rtsync_store_appends_total') - (before.get('rtsync_store_appends_total') ?? 0), 5);
  assert.ok(m.get('rtsync_store_commits_total') >= 1);
  assert.ok(m.get('rtsync_bytes_in_total') > 0 && m.get('rtsync_bytes_out_total') > 0);
  assert.ok(m.get('rtsync_socket_writes_total') > 0);
  assert.equal(m.get('rtsync_flush_frames_count'), m.get('rtsync_socket_writes_total'));
  assert.equal(m.get('rtsync_publish_to_flush_seconds_count') - (before.get('rtsync_publish_to_flush_seconds_count') ?? 0), 10);
  assert.equal(m.get('rtsync_publish_to_flush_seconds_bucket{le="+Inf"}'), m.get('rtsync_publish_to_flush_seconds_count'));
  // Every commit is timed and sized: one observation per commit, and the batch sizes add up to at least
  // the appends (document writes count too).
  const commits = m.get('rtsync_store_commits_total');
  assert.equal(m.get('rtsync_store_commit_seconds_count'), commits);
  assert.equal(m.get('rtsync_store_commit_seconds_bucket{le="+Inf"}'), commits);
  assert.ok(m.get('rtsync_store_commit_seconds_sum') > 0);
  assert.equal(m.get('rtsync_store_commit_batch_count'), commits);
  assert.ok(m.get('rtsync_store_commit_batch_sum') >= m.get('rtsync_store_appends_total'));

  await a.close();
  await b.close();
  // The server notices the closes asynchronously.
  await waitFor(async () => {
    const closed = await scrape();
    return closed.get('rtsync_connections') === 0 && closed.get('rtsync_subscriptions') === 0;
  }, { message: 'connection and subscription gauges back to 0' });
});

test('[server] metrics_token: /metrics needs that Bearer token (401 otherwise); without it /metrics is open', async () => {
  const token = 'scrape-0123456789abcdef';
  const guarded = await startServer({ config: `[server]\nmetrics_token = "${token}"\n` });
  for (const authorization of [undefined, 'Bearer wrong-0123456789abcdef', `Bearer ${token}x`, `Basic ${token}`, `Bearer`]) {
    for (const target of ['/metrics', '/%6Detrics', '/metrics?x=1']) {
      const res = await httpRequest(`${guarded.url}${target}`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, `${target} ${authorization}`);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
      assert.equal(res.json().error.code, 'permission_denied');
      assert.doesNotMatch(res.body, /rtsync_/);
    }
  }
  for (const authorization of [`Bearer ${token}`, `bearer ${token}`]) {
    const ok = await httpRequest(`${guarded.url}/metrics`, { headers: { authorization } });
    assert.equal(ok.status, 200, authorization);
    assert.match(ok.body, /^rtsync_http_requests_total \d+$/m);
  }
  // The open default (the server of the other tests).
  assert.equal((await httpRequest(`${server.url}/metrics`)).status, 200);
});
