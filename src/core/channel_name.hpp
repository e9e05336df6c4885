// Channel names (PROTOCOL §4): 1-128 characters of A-Za-z0-9_.:@- ; the part before the first ':' is
// the namespace ("" for the default namespace).
#pragma once

#include <string_view>

namespace rtsync::core {

inline constexpr std::size_t max_channel_name = 128;

constexpr bool valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() > max_channel_name) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

constexpr std::string_view namespace_of(std::string_view name) {
  auto colon = name.find(':');
  return colon == std::string_view::npos ? std::string_view{} : name.substr(0, colon);
}

}  // namespace rtsync::core
