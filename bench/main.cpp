// rtsync-bench: a load generator that speaks rtsync's WebSocket protocol over raw sockets (ws_client.hpp),
// so the numbers measure the server rather than a client library. One thread, many connections.
//
//   rtsync-bench tally  --server 127.0.0.1:8080 --coll bench --writers 256 --seconds 10
//   rtsync-bench fanout --server 127.0.0.1:8080 --server-pid PID --subscribers 10000 --rate 2000 --size 64
//   rtsync-bench idle   --server 127.0.0.1:8080 --server-pid PID --connections 10000
#include <CLI/CLI.hpp>

#include "scenarios.hpp"

int main(int argc, char** argv) {
  CLI::App app{"rtsync-bench: load generator for rtsync"};
  app.require_subcommand(1);

  bench::Common common;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--server", common.server, "HOST:PORT of the server");
    sub->add_option("--path", common.path, "WebSocket path");
    sub->add_option("--server-pid", common.server_pid, "server process, for CPU and memory from /proc");
    sub->add_option("--seconds", common.seconds, "measured duration");
    sub->add_option("--warmup", common.warmup, "seconds before measuring");
    sub->add_option("--json", common.json, "append the result as one JSON line to this file");
    sub->add_option("--label", common.label, "name of the run in the JSON result");
  };

  bench::TallyOptions tally;
  auto* t = app.add_subcommand("tally", "durable tally writes: per_user documents replaced in a loop");
  add_common(t);
  t->add_option("--coll", tally.coll, "tally collection (per_user, fields f0..fN-1 with values 0-3)");
  t->add_option("--writers", tally.writers, "concurrent writer connections");
  t->add_option("--fields", tally.fields, "fields per document");

  bench::FanoutOptions fanout;
  auto* f = app.add_subcommand("fanout", "open-loop publications fanned out to many subscribers");
  add_common(f);
  f->add_option("--subscribers", fanout.subscribers, "subscriber connections");
  f->add_option("--channels", fanout.channels, "channels (subscribers spread round-robin)");
  f->add_option("--publishers", fanout.publishers, "publisher connections");
  f->add_option("--rate", fanout.rate, "publications per second, in total");
  f->add_option("--size", fanout.size, "payload bytes per publication");
  f->add_option("--prefix", fanout.prefix, "channel name prefix (e.g. mem:b for a non-durable namespace)");

  bench::IdleOptions idle;
  auto* i = app.add_subcommand("idle", "idle connections: server memory per connection");
  add_common(i);
  i->add_option("--connections", idle.connections, "connections to open");

  CLI11_PARSE(app, argc, argv);
  if (t->parsed()) return bench::run_tally(common, tally);
  if (f->parsed()) return bench::run_fanout(common, fanout);
  if (i->parsed()) return bench::run_idle(common, idle);
  return 0;
}
