// PubNub presence (PROTOCOL §7): which PubNub uuids are present on which channels. A uuid becomes present
// with its first heartbeat or subscribe request on a channel and stays present while it keeps sending them
// within its window, and for as long as one of its long polls is pending (the SDK's default event engine
// sends a single heartbeat and relies on that). `leave` ends it at once; silence past the window ends it
// with a timeout.
//
// A present uuid is a member of the hub's channel presence, like a WebSocket subscriber (session
// "pubnub:UUID", user UUID), so one mechanism serves both worlds: native `presence` lists PubNub uuids,
// native presence listeners get their join/leave pushes, PubNub here_now counts native users, and the
// channel's -pnpres feed (core/presence.hpp) gets join, leave and timeout events for everyone, in
// PubNub's format (pubnub_feed_event, which the engine gives the hub). A uuid's presence state on a channel
// is its member's info (service/pubnub_state.hpp), so it is mirrored, shown and cleared with the member.
//
// Thread-safe: one mutex, taken before the hub's channel locks (the hub never calls back).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/channel.hpp"

namespace rtsync::service {

// A presence feed event's data, as PubNub sends it:
// {"action":"join"|"leave"|"timeout"|"state-change","timestamp":UNIX_S,"uuid":USER,"occupancy":N}, plus
// "data":STATE on a state-change, and on a join that comes with a state (the SDK calls it `state`).
std::string pubnub_feed_event(const core::FeedEvent& e);

class PubnubPresence {
 public:
  using Clock = std::chrono::steady_clock;

  // `window`: the configured heartbeat window ([pubnub] presence_timeout). `next_session_no` hands out the
  // process-unique member numbers that WebSocket sessions also draw from.
  PubnubPresence(core::Presence& presence, std::chrono::seconds window, std::function<std::uint64_t()> next_session_no);

  // The window for a client that asked for `requested` seconds (the `heartbeat` parameter): the smaller of
  // the two, since a client that heartbeats often wants to be timed out early. nullopt when not asked.
  std::optional<std::chrono::seconds> window_for(std::optional<std::int64_t> requested) const;

  // A heartbeat or subscribe request: present on each channel until now + the window (joins where
  // absent). The window is `window` when given, else the one the uuid's heartbeats asked for on that
  // channel, else the configured one. Channels without presence (their namespace's `presence = false`,
  // and every -pnpres feed) are skipped.
  void touch(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
             std::optional<std::chrono::seconds> window, Clock::time_point now = Clock::now());
  // The same, setting the uuid's presence state on the channels `states` names (by channel name, as
  // service::states_for gives them; "null" clears it). A member that joins has its state at once; a
  // changed state is a state-change event (core::Presence).
  void touch(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
             std::optional<std::chrono::seconds> window, const std::map<std::string, std::string>& states,
             Clock::time_point now = Clock::now());
  // A long poll starts: present until the matching release() (holds nest), then for the window.
  void hold(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
            std::optional<std::chrono::seconds> window, Clock::time_point now = Clock::now());
  void release(const std::string& uuid, const std::vector<core::ChannelRef>& channels,
               Clock::time_point now = Clock::now());
  // The uuid's state on a channel, as the hub's members show it (a uuid present on another node of a
  // cluster too): nullopt when it is no member there.
  std::optional<std::string> state(const std::string& uuid, core::Channel& ch);
  // Absent at once, with a leave event.
  void leave(const std::string& uuid, const std::vector<core::ChannelRef>& channels);
  // Times out every uuid whose window passed without a pending long poll; returns how many left.
  std::size_t sweep(Clock::time_point now = Clock::now());

  std::size_t size();

 private:
  struct Entry {
    core::ChannelRef channel;  // keeps it in memory while the uuid is present
    std::uint64_t session_no = 0;
    unsigned holds = 0;
    Clock::time_point expires{};
    std::chrono::seconds window{};
    std::string info = "null";  // the presence state
  };
  using Key = std::pair<core::Channel*, std::string>;

  Entry& present(const core::ChannelRef& ch, const std::string& uuid, std::optional<std::chrono::seconds> window,
                 const std::string* info = nullptr);
  void join(const core::ChannelRef& ch, const std::string& uuid, const Entry& e);

  core::Presence& presence_;
  const std::chrono::seconds window_;
  std::function<std::uint64_t()> next_session_no_;
  std::mutex mu_;
  std::map<Key, Entry> entries_;
};

}  // namespace rtsync::service
