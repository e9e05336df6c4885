// A token bucket: `burst` tokens, refilled continuously at `rate` per second, one taken per command or
// request. WebSocket sessions keep one per connection; the HTTP limiter one per client address and user.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>

namespace rtsync::common {

struct TokenBucket {
  using Clock = std::chrono::steady_clock;
  double tokens = 0;
  Clock::time_point refilled{};

  static TokenBucket full(double burst, Clock::time_point now) { return TokenBucket{burst, now}; }

  // Refills for the time since the last call, then takes a token; false, taking nothing, when empty.
  bool take(double rate, double burst, Clock::time_point now) {
    refill(rate, burst, now);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  // Whole seconds, at least 1, until a token will be there (a Retry-After after a refused take).
  long seconds_until_token(double rate) const {
    return std::max(1L, static_cast<long>(std::ceil((1 - tokens) / rate)));
  }

  // Whether the bucket has refilled to `burst` by `now`: it is then no different from a new one.
  bool full_at(double rate, double burst, Clock::time_point now) const {
    return tokens + std::chrono::duration<double>(now - refilled).count() * rate >= burst;
  }

 private:
  void refill(double rate, double burst, Clock::time_point now) {
    tokens = std::min(burst, tokens + std::chrono::duration<double>(now - refilled).count() * rate);
    refilled = now;
  }
};

}  // namespace rtsync::common
