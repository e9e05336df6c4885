// A ready-to-send WebSocket frame: header and payload in one buffer, built once and shared by reference
// count with every connection that sends it. Server frames are unmasked, so the same bytes serve all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rtsync::core {

struct Frame {
  std::string bytes;       // the header starts at `begin`; room before it is left by the builder
  std::uint32_t begin = 0;
  std::int64_t built_ns = 0;  // steady clock when a publication's frame was built (metrics); 0: not timed

  std::string_view view() const { return std::string_view(bytes).substr(begin); }
  std::size_t size() const { return bytes.size() - begin; }
};

using FramePtr = std::shared_ptr<const Frame>;

}  // namespace rtsync::core
