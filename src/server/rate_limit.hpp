// The HTTP rate limit ([limits] http_rate, http_burst, http_user_rate, http_user_burst; docs/security.md):
// a token bucket per client address and one per user, shared by every I/O worker. Each table holds at most
// `capacity` buckets: a bucket that has refilled is no different from a new one and is dropped, and when the
// table is full the least recently used bucket makes room, so its memory is bounded whatever the traffic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ip.hpp"
#include "common/token_bucket.hpp"
#include "config/config.hpp"
#include "server/http.hpp"

namespace rtsync::server {

using Clock = std::chrono::steady_clock;

class RateTable {
 public:
  RateTable(double rate, double burst, std::size_t capacity);
  // Takes a token from `key`'s bucket: 0 when the request may go, else the seconds until it may.
  long take(std::string_view key, Clock::time_point now);
  std::size_t size() const;

 private:
  struct Entry {
    std::string key;
    common::TokenBucket bucket;
  };
  void drop_last();

  const double rate_;
  const double burst_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // keys point into lru_
};

class HttpRateLimit {
 public:
  // Buckets per table at most: about 10 MiB each when full.
  static constexpr std::size_t default_capacity = 65536;

  explicit HttpRateLimit(const config::Config& cfg, std::size_t capacity = default_capacity);

  // The client a request counts for: its peer, or, when the peer is a trusted proxy, the address that
  // X-Forwarded-For names last before the trusted ones.
  common::Ip client_of(const common::Ip& peer, const Request& req) const;
  // 0 when the request may go, else the seconds to wait (Retry-After). IPv6 clients count per /64.
  long by_address(const common::Ip& client, Clock::time_point now);
  long by_user(std::string_view user, Clock::time_point now);

  std::size_t clients() const;  // buckets held, both tables
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  long count(long wait);

  std::optional<RateTable> addresses_;
  std::optional<RateTable> users_;
  std::vector<common::IpNetwork> trusted_;
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace rtsync::server
