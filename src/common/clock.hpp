#pragma once

#include <chrono>
#include <cstdint>

namespace rtsync::common {

// Wall-clock milliseconds since the Unix epoch (publication timestamps).
inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace rtsync::common
