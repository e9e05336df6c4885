// Idempotency keys of in-memory channels: (user, key) -> the offset of the first publication, for 24 h.
// Durable channels keep theirs in the store, in the same transaction as the publication.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace rtsync::core {

class IdempotencyCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto ttl = std::chrono::hours(24);

  // The remembered result for (user, key), if any.
  std::optional<std::uint64_t> find(const std::string& user, const std::string& key, Clock::time_point now);
  void remember(const std::string& user, const std::string& key, std::uint64_t offset, Clock::time_point now);

  // Held by the caller across find + publish + remember, so two concurrent retries apply once.
  std::mutex& mutex() { return mu_; }

 private:
  void expire(Clock::time_point now);

  std::mutex mu_;
  struct Entry {
    std::uint64_t offset;
    Clock::time_point at;
  };
  std::unordered_map<std::string, Entry> entries_;               // user + '\0' + key
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // insertion order, for expiry
};

}  // namespace rtsync::core
