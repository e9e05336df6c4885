// The benchmark scenarios. Each prints a human-readable summary and, with --json, appends one JSON line.
#pragma once

#include <string>

namespace bench {

struct Common {
  std::string server = "127.0.0.1:8080";
  std::string path = "/v1/ws";
  int server_pid = 0;
  double seconds = 10;
  double warmup = 2;
  std::string json;
  std::string label = "rtsync";
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
  double rate = 1000;
  int size = 64;
  std::string prefix = "bench";
};

struct IdleOptions {
  int connections = 1000;
};

int run_tally(const Common& c, const TallyOptions& o);
int run_fanout(const Common& c, const FanoutOptions& o);
int run_idle(const Common& c, const IdleOptions& o);

}  // namespace bench
