// Wildcard patterns and the patterns a channel matches. See pubnub_wildcard.hpp.
#include "service/pubnub_wildcard.hpp"

#include <algorithm>

#include "core/channel_name.hpp"
#include "core/presence.hpp"

namespace rtsync::service {

namespace {
constexpr std::string_view kTail = ".*";
constexpr std::size_t kMaxDots = 1;  // in the prefix: `a.b.*` is PubNub's deepest pattern

bool server_owned(std::string_view ns) { return ns == "coll" || ns == "tally"; }
}  // namespace

bool valid_wildcard(std::string_view name) {
  if (!name.ends_with(kTail) || name.size() > core::max_channel_name) return false;
  const auto prefix = name.substr(0, name.size() - kTail.size());
  if (!core::valid_channel_name(prefix) || prefix.ends_with('.') || prefix.ends_with(':')) return false;
  if (server_owned(core::namespace_of(prefix))) return false;
  // Dots count after the namespace: `ns.x:a.*` has one level, like `a.*`.
  const auto ns = core::namespace_of(prefix);
  const auto rest = ns.empty() ? prefix : prefix.substr(ns.size() + 1);
  return static_cast<std::size_t>(std::count(rest.begin(), rest.end(), '.')) <= kMaxDots &&
         !rest.starts_with('.');
}

std::vector<std::string> wildcards_of(std::string_view channel) {
  std::vector<std::string> out;
  if (channel.ends_with(core::presence_feed_suffix)) return out;
  const auto ns = core::namespace_of(channel);
  if (server_owned(ns)) return out;
  const std::size_t start = ns.empty() ? 0 : ns.size() + 1;
  std::size_t from = start;
  for (std::size_t level = 0; level <= kMaxDots; ++level) {
    const auto dot = channel.find('.', from);
    if (dot == std::string_view::npos || dot == start || dot + 1 == channel.size()) break;
    std::string pattern(channel.substr(0, dot));
    pattern += kTail;
    if (valid_wildcard(pattern)) out.push_back(std::move(pattern));
    from = dot + 1;
  }
  return out;
}

}  // namespace rtsync::service
