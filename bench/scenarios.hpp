// The benchmark scenarios. Each prints progress on stderr and, per run or sweep step, one JSON line on
// stdout (and appended to --json).
#pragma once

#include <string>
#include <vector>

namespace bench {

// The server under test and the protocol the generator speaks to it (peers.cpp):
//   rtsync    rtsync's WebSocket protocol at /v1/ws (sub/pub ops; pushes {"op":"msg",…,"data":PAYLOAD})
//   ws, uws   the tiny protocol of bench/peers/*.js: "sub CH" → "ok"; "pub CH PAYLOAD" → PAYLOAD to CH
//   socketio  Engine.IO 4 / Socket.IO 5 packets: 40 → 40{…}; 42["sub",CH] → 42["ok"];
//             42["pub",CH,PAYLOAD] → 42["m",PAYLOAD]; ping "2" → "3"
//   nchan     WebSocket subscriber at /sub/CH, WebSocket publisher at /pub/CH (one per channel)
//   redis     RESP: SUBSCRIBE CH, PUBLISH CH PAYLOAD
//   pubnub    rtsync's PubNub subscribe v2 long poll (HTTP) for subscribers, rtsync WebSocket publishers
struct Common {
  std::string server = "127.0.0.1:8080";
  std::string proto = "rtsync";
  std::string path;  // WebSocket path override (default: the protocol's)
  int server_pid = 0;
  double seconds = 10;
  double warmup = 2;
  std::string json;
  std::string label;     // server name in the JSON result (default: proto)
  std::string scenario;  // scenario name in the JSON result (default: the subcommand)
  std::string tag;       // raw JSON members added to every result line, e.g. "\"rep\":1"
  std::string pubnub_key = "demo";
  std::vector<std::string> also;  // fanout: more HOST:PORTs (other cluster nodes) that subscribers spread over
};

struct TallyOptions {
  std::string coll = "bench";
  int writers = 16;
  int fields = 20;
};

struct FanoutOptions {
  int subscribers = 1000;
  int channels = 1;
  int publishers = 1;
  std::vector<double> rates{1000};  // publications per second in total; several = a sweep
  int size = 64;
  std::string prefix = "bench";
  double slow = 0;           // share of subscribers that stop reading once subscribed
  bool until_saturated = true;  // a sweep stops after its first saturated step
  double drain = 5;          // seconds to wait after a step for every reader to catch up
};

struct IdleOptions {
  std::vector<int> connections{1000};  // several = grow and measure at each count
};

struct ChurnOptions {
  int concurrency = 64;  // connections in flight (connect, subscribe, close)
  std::string prefix = "churn";
};

// Collection queries (issue 13): load, indexed first pages, paging, RSS, live filtered views under writes.
struct QueriesOptions {
  std::string coll = "q";    // needs indexes = [["status", "-n"]] (scripts/bench.sh)
  long docs = 1000000;       // documents loaded: {"id":"dNNNNNNN","status":"s0".."s7","n":0..999999,"title":…}
  int loaders = 4;           // connections that load
  int pipeline = 128;        // creates in flight per loading connection
  int queries = 2000;        // first pages of {"where":{"status":X},"order":["-n"],"limit":50}, one at a time
  long page_docs = 100000;   // documents read by paging (limit page_limit, following next)
  int page_limit = 1000;
  int subscribers = 1000;    // live filtered views {"status":S,"n":{"gte":K}}, distinct (S,K), one per connection
  double rate = 1000;        // patches per second (open loop) while they listen
  int writers = 4;           // connections that patch
};

int run_tally(const Common& c, const TallyOptions& o);
int run_fanout(const Common& c, const FanoutOptions& o);
int run_idle(const Common& c, const IdleOptions& o);
int run_churn(const Common& c, const ChurnOptions& o);
int run_queries(const Common& c, const QueriesOptions& o);

}  // namespace bench
