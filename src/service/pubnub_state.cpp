// PubNub presence state: normalizing a state, and the states a request gives its channels. See
// pubnub_state.hpp.
#include "service/pubnub_state.hpp"

#include <boost/json.hpp>

#include <algorithm>

#include "common/client_json.hpp"

namespace rtsync::service {

namespace json = boost::json;

namespace {
std::optional<std::string> normalized(const json::value& v) {
  if (!v.is_object() || !common::all_numbers_finite(v)) return std::nullopt;
  if (v.get_object().empty()) return std::string("null");
  std::string text = json::serialize(v);
  if (text.size() > kMaxPresenceState) return std::nullopt;
  return text;
}
}  // namespace

std::optional<std::string> normalize_state(std::string_view text) {
  if (text.size() > kMaxPresenceState) return std::nullopt;
  boost::system::error_code ec;
  auto v = common::parse_client_json(text, ec);
  if (ec) return std::nullopt;
  return normalized(v);
}

std::optional<std::map<std::string, std::string>> states_for(
    std::string_view param, const std::vector<std::string>& channels,
    const std::map<std::string, std::vector<std::string>>& groups) {
  boost::system::error_code ec;
  // One level more than a state: the object of states.
  auto v = common::parse_client_json(param, ec, 1);
  if (ec || !v.is_object()) return std::nullopt;
  std::map<std::string, std::string> out;
  const auto& obj = v.get_object();
  const bool keyed = std::all_of(obj.begin(), obj.end(), [](const auto& kv) { return kv.value().is_object(); });
  if (!keyed) {
    // One state for every channel (the SDK's setState withHeartbeat sends it so).
    auto state = normalized(v);
    if (!state) return std::nullopt;
    for (const auto& ch : channels) out.emplace(ch, *state);
    return out;
  }
  std::map<std::string, std::string> from_groups;
  for (const auto& kv : obj) {
    auto state = normalized(kv.value());
    if (!state) return std::nullopt;
    const std::string name(kv.key());
    if (std::find(channels.begin(), channels.end(), name) != channels.end()) out[name] = *state;
    if (auto g = groups.find(name); g != groups.end())
      for (const auto& ch : g->second) from_groups.emplace(ch, *state);  // emplace: the first group wins
  }
  for (auto& [ch, state] : from_groups)
    if (std::find(channels.begin(), channels.end(), ch) != channels.end()) out.emplace(ch, std::move(state));
  return out;
}

}  // namespace rtsync::service
