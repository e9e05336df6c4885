// PubNub presence state (PROTOCOL §7): a uuid's state on a channel is a JSON object that its member in the
// hub carries as its `info` (core::Member), so the state travels wherever the member does (every node of a
// cluster mirrors it), native presence shows it as the member's info, a change of it is a "state-change"
// event on the channel's -pnpres feed (core/presence.hpp), and it goes with the member on leave or timeout.
// This file holds the pure part: which text is a state, and which state a request gives each channel.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::service {

// PubNub's limit on a state (its JSON text, as for a message).
inline constexpr std::size_t kMaxPresenceState = 32 * 1024;

// The state as kept: the compact JSON text of an object, "null" for {} (setting {} clears the state).
// nullopt: not JSON, not an object, deeper than common::max_json_depth, or larger than kMaxPresenceState.
std::optional<std::string> normalize_state(std::string_view text);

// The `state` parameter of a heartbeat or subscribe, {NAME: STATE, …}, where NAME is a channel or a
// channel group: the state of each of `channels`, by name. A channel's own key wins over a group's; of
// two groups that list it, the first key in the parameter wins. `groups` gives each group's channels.
// Names in the parameter that are neither channels of the request nor its groups are ignored (the SDK
// sends the state of every subscription it has). A parameter with a value that is not an object is no
// such map but one state for every channel, as the SDK's setState({withHeartbeat: true}) sends it (a
// state whose values are all objects is therefore read as a map). nullopt: malformed (not an object, or
// a state that normalize_state refuses).
std::optional<std::map<std::string, std::string>> states_for(
    std::string_view param, const std::vector<std::string>& channels,
    const std::map<std::string, std::vector<std::string>>& groups = {});

}  // namespace rtsync::service
