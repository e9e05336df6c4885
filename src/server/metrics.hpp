// Prometheus metrics (GET /metrics, text format 0.0.4). Counters live per I/O worker, each on its own
// cache lines and written only by its thread (relaxed atomics, so the scrape can read them), which keeps
// the delivery path free of shared writes; the scrape adds them up.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rtsync::server {

// Adds to a counter only its worker writes: a relaxed load and store, without the locked read-modify-write
// of fetch_add, which the delivery path would pay per frame.
template <typename T, typename N>
inline void bump(std::atomic<T>& c, N n) {
  c.store(c.load(std::memory_order_relaxed) + static_cast<T>(n), std::memory_order_relaxed);
}

// A histogram with fixed upper bounds (Prometheus `le`), cumulative only when rendered.
template <std::size_t N>
struct Histogram {
  std::array<double, N> bounds;
  std::array<std::atomic<std::uint64_t>, N + 1> counts{};  // the last one is +Inf
  std::atomic<std::uint64_t> count{0};
  std::atomic<double> sum{0};

  explicit Histogram(std::array<double, N> b) : bounds(b) {}
  void observe(double v) {
    std::size_t i = 0;
    while (i < N && v > bounds[i]) ++i;
    // Only the owning worker writes.
    bump(counts[i], 1);
    bump(count, 1);
    bump(sum, v);
  }
};

struct alignas(64) WorkerMetrics {
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> subscriptions{0};
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> slow_consumers{0};
  std::atomic<std::uint64_t> http_requests{0};
  Histogram<8> flush_frames{{1, 2, 4, 8, 16, 64, 256, 1024}};  // frames per socket write
  Histogram<10> publish_to_flush{{1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 5e-2, 0.25}};  // seconds
};

// What the rest of the server reports at scrape time.
struct ProcessGauges {
  std::uint64_t channels = 0;
  std::uint64_t publications = 0;
  std::uint64_t store_commits = 0;
  std::uint64_t store_appends = 0;
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
