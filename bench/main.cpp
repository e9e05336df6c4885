// rtsync-bench: a load generator that speaks each compared server's protocol over raw sockets
// (ws_client.hpp, peers.hpp), so the numbers measure the server rather than a client library. One
// thread, many connections. bench/compare.sh drives it against rtsync and its peers.
//
//   rtsync-bench tally  --server 127.0.0.1:8080 --coll bench --writers 256 --seconds 10
//   rtsync-bench fanout --server 127.0.0.1:8080 --server-pid PID --subscribers 10000 --rates 10,20,50 --size 64
//   rtsync-bench fanout --proto redis --server 127.0.0.1:6390 --server-pid PID --subscribers 10000 --rates 20
//   rtsync-bench idle   --server 127.0.0.1:8080 --server-pid PID --connections 1000,10000,19000
//   rtsync-bench churn  --server 127.0.0.1:8080 --server-pid PID --concurrency 64 --seconds 5
//   rtsync-bench queries --server 127.0.0.1:8080 --server-pid PID --coll q --docs 1000000 --seconds 10
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <cstdio>

#include "scenarios.hpp"

int main(int argc, char** argv) {
  // Every connection is a file descriptor: take the hard limit (20,000 on the reference machine).
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("setrlimit");
  }

  CLI::App app{"rtsync-bench: load generator for rtsync and the servers it is compared with"};
  app.require_subcommand(1);

  bench::Common common;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--server", common.server, "HOST:PORT of the server");
    sub->add_option("--proto", common.proto, "rtsync, ws, uws, socketio, nchan, redis, pubnub")
        ->check(CLI::IsMember({"rtsync", "ws", "uws", "socketio", "nchan", "redis", "pubnub"}));
    sub->add_option("--path", common.path, "WebSocket path (default: the protocol's)");
    sub->add_option("--server-pid", common.server_pid, "server process (and its children): CPU and memory from /proc");
    sub->add_option("--seconds", common.seconds, "measured duration (per step)");
    sub->add_option("--warmup", common.warmup, "seconds before measuring (per step)");
    sub->add_option("--json", common.json, "append each result as one JSON line to this file");
    sub->add_option("--label", common.label, "server name in the JSON result (default: --proto)");
    sub->add_option("--scenario", common.scenario, "scenario name in the JSON result (default: the subcommand)");
    sub->add_option("--tag", common.tag, "raw JSON members added to each result, e.g. '\"rep\":1'");
    sub->add_option("--pubnub-key", common.pubnub_key, "PubNub subscribe key (pubnub)");
  };

  bench::TallyOptions tally;
  auto* t = app.add_subcommand("tally", "durable tally writes: per_user documents replaced in a loop (rtsync)");
  add_common(t);
  t->add_option("--coll", tally.coll, "tally collection (per_user, fields f0..fN-1 with values 0-3)");
  t->add_option("--writers", tally.writers, "concurrent writer connections");
  t->add_option("--fields", tally.fields, "fields per document");

  bench::FanoutOptions fanout;
  bool no_stop = false;
  auto* f = app.add_subcommand("fanout", "open-loop publications fanned out to many subscribers");
  add_common(f);
  f->add_option("--subscribers", fanout.subscribers, "subscriber connections");
  f->add_option("--channels", fanout.channels, "channels (subscribers spread round-robin)");
  f->add_option("--publishers", fanout.publishers, "publisher connections (nchan: one per channel)");
  f->add_option("--rate,--rates", fanout.rates, "publications per second in total; a list (10,20,50) is a sweep")
      ->delimiter(',');
  f->add_option("--size", fanout.size, "payload bytes per publication");
  f->add_option("--prefix", fanout.prefix, "channel name prefix (e.g. mem:b for a non-durable namespace)");
  f->add_option("--slow", fanout.slow, "share of subscribers that stop reading once subscribed (0.01 = 1%)");
  f->add_option("--drain", fanout.drain, "seconds to wait after each step for the readers to catch up");
  f->add_flag("--no-stop", no_stop, "run every step of a sweep, even after a saturated one");
  f->add_option("--also", common.also, "other nodes of a cluster: subscribers spread round-robin over --server and these")
      ->delimiter(',');

  bench::IdleOptions idle;
  auto* i = app.add_subcommand("idle", "idle connections: server memory per connection");
  add_common(i);
  i->add_option("--connections", idle.connections, "connections to open; a list (1000,10000,19000) grows")->delimiter(',');

  bench::ChurnOptions churn;
  auto* ch = app.add_subcommand("churn", "connect, subscribe, disconnect in a loop");
  add_common(ch);
  ch->add_option("--concurrency", churn.concurrency, "connections in flight");
  ch->add_option("--prefix", churn.prefix, "channel name prefix");

  bench::QueriesOptions queries;
  auto* q = app.add_subcommand("queries", "collection queries: load, indexed pages, paging, live filtered views (rtsync)");
  add_common(q);
  q->add_option("--coll", queries.coll, "collection, with indexes = [[\"status\", \"-n\"]]");
  q->add_option("--docs", queries.docs, "documents to load");
  q->add_option("--loaders", queries.loaders, "loading connections");
  q->add_option("--pipeline", queries.pipeline, "creates in flight per loading connection");
  q->add_option("--queries", queries.queries, "indexed first-page queries, one at a time");
  q->add_option("--page-docs", queries.page_docs, "documents to read by paging");
  q->add_option("--page-limit", queries.page_limit, "limit of each page when paging");
  q->add_option("--subscribers", queries.subscribers, "live filtered subscribers (one connection each)");
  q->add_option("--rate", queries.rate, "patches per second while the subscribers listen");
  q->add_option("--writers", queries.writers, "patching connections");

  CLI11_PARSE(app, argc, argv);
  fanout.until_saturated = !no_stop;
  if (t->parsed()) return bench::run_tally(common, tally);
  if (f->parsed()) return bench::run_fanout(common, fanout);
  if (i->parsed()) return bench::run_idle(common, idle);
  if (ch->parsed()) return bench::run_churn(common, churn);
  if (q->parsed()) return bench::run_queries(common, queries);
  return 0;
}
