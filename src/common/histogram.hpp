// Counters and histograms that one thread writes and any thread may read (metrics scraped while the owner
// runs): relaxed atomics, written with a load and a store instead of a locked read-modify-write.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rtsync::common {

// Adds to a counter only its owner writes, without the locked read-modify-write of fetch_add, which the
// delivery path would pay per frame.
template <typename T, typename N>
inline void bump(std::atomic<T>& c, N n) {
  c.store(c.load(std::memory_order_relaxed) + static_cast<T>(n), std::memory_order_relaxed);
}

// A histogram with fixed upper bounds (Prometheus `le`), cumulative only when rendered. One writer.
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
    bump(counts[i], 1);
    bump(count, 1);
    bump(sum, v);
  }
};

}  // namespace rtsync::common
