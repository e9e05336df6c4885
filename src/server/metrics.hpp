// Prometheus metrics (GET /metrics, text format 0.0.4). Counters live per I/O worker, each on its own
// cache lines and written only by its thread (relaxed atomics, so the scrape can read them), which keeps
// the delivery path free of shared writes; the scrape adds them up.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/histogram.hpp"

namespace rtsync::server {

using common::bump;
using common::Histogram;

struct alignas(64) WorkerMetrics {
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> subscriptions{0};
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> slow_consumers{0};
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> accept_exhausted{0};  // worker 0 only: the acceptor runs there
  std::atomic<std::uint64_t> connections_shed{0};  // worker 0 only
  Histogram<8> flush_frames{{1, 2, 4, 8, 16, 64, 256, 1024}};  // frames per socket write
  Histogram<10> publish_to_flush{{1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 5e-2, 0.25}};  // seconds
};

// What the rest of the server reports at scrape time.
struct ProcessGauges {
  std::uint64_t channels = 0;
  std::uint64_t publications = 0;
  std::uint64_t store_commits = 0;
  std::uint64_t store_appends = 0;
  const Histogram<10>* store_commit_seconds = nullptr;  // the store's own, read at scrape time
  const Histogram<8>* store_commit_batch = nullptr;
  std::uint64_t http_rate_limited = 0;  // requests answered 429
  std::uint64_t http_rate_clients = 0;  // buckets the HTTP limiter holds
  std::string more{};  // whole metric families of other parts (the webhooks'), appended as they are
};

class Metrics {
 public:
  Metrics(std::size_t workers, std::function<ProcessGauges()> gauges);
  WorkerMetrics& worker(std::size_t i) { return *workers_[i]; }
  std::string render() const;

 private:
  std::vector<std::unique_ptr<WorkerMetrics>> workers_;
  std::function<ProcessGauges()> gauges_;
};

}  // namespace rtsync::server
