// Presence: who is on a channel. Membership is by session (members) and, derived from it, by user: a
// channel's occupancy is its number of distinct users. A member joins with its subscription, in the
// same critical section as the subscription's snapshot (core::Hub::subscribe), or on its own (join():
// a PubNub uuid kept present by heartbeats, a member mirrored from another node of a cluster). Every
// session's join and leave goes to the channel's presence listeners (native `presence` pushes); only a
// user's first session joining and its last one leaving changes the occupancy, and that is an event on
// the channel's presence feed, the in-memory channel NAME-pnpres, if that channel exists (someone
// subscribed to or read it). A member that joins again with other `info` (a PubNub uuid's presence state,
// a native session's new token) is a "state-change" event there. The event's data is injected (FeedEventEncoder: PubNub's format, built in
// service/pubnub_presence.cpp), so the core knows no front end's format.
//
// State is per channel (ChannelPresence, in core::Channel) under the channel's lock. Lock order: a
// channel, then its feed (feeds never have members, so never feeds of their own). Members mirrored from
// other nodes (Member::remote) are members like any other, but the member observer, which tells the
// other nodes, only hears of this node's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/frame.hpp"

namespace rtsync::core {

class Channel;
class Hub;

// A presence member: one subscribed session.
struct Member {
  std::uint64_t session_no = 0;  // process-unique number of the session (fast comparisons)
  std::string session;           // the session id clients see
  std::string user;
  std::string info = "null";     // JSON text shown to others
  bool remote = false;           // mirrored from another node of a cluster (see the top of this file)
};

// Told of every change of this node's own members (remote == false): joined true on a join (or a member's
// update), false on a leave with `action` ("leave" or "timeout"). Called with the channel's lock held,
// from any thread: it must only queue, never block or call back into the hub.
using MemberObserver =
    std::function<void(const std::string& channel, const Member& m, bool joined, std::string_view action)>;

// The suffix of a channel's presence feed (PubNub's naming).
inline constexpr std::string_view presence_feed_suffix = "-pnpres";

// A change of a channel's occupancy, or of a member's info, as its feed tells it.
struct FeedEvent {
  std::string_view action;  // "join", "leave", "timeout" or "state-change"
  std::string_view user;
  std::size_t occupancy = 0;  // after the change
  std::int64_t ts = 0;        // milliseconds since the Unix epoch
  std::string_view info{};    // join and state-change: the member's info (JSON text; "null": none)
};
// Builds a feed event's publication data; called with the channel's lock held. Without one, the hub
// makes no feed events.
using FeedEventEncoder = std::function<std::string(const FeedEvent&)>;

struct PresenceResult {
  std::vector<Member> clients;
  std::size_t users = 0;     // distinct user ids
  std::size_t sessions = 0;  // subscribed sessions
};

// One channel's presence; guarded by the channel's lock.
class ChannelPresence {
 public:
  explicit ChannelPresence(std::size_t sinks) : listeners_(sinks, 0) {}
  // No members and no presence listeners (the channel may be unloaded).
  bool idle() const;

 private:
  friend class Presence;
  std::vector<std::uint32_t> listeners_;                // per sink
  std::map<std::uint64_t, Member> members_;             // by session_no
  std::unordered_map<std::string, std::size_t> users_;  // members per user id; its size is the occupancy
  std::shared_ptr<Channel> feed_;                       // NAME-pnpres once it exists (found lazily)
};

// The hub's presence (core::Hub::presence()). Thread-safe: each call takes the channel's lock.
class Presence {
 public:
  Presence(const Presence&) = delete;
  Presence& operator=(const Presence&) = delete;

  // A member that is no subscriber of this hub's sinks (a PubNub uuid kept present by heartbeats, a
  // member of another node): added, or removed with `action` ("leave" or "timeout") as the feed's event.
  // The channel need not be loaded. Removing an unknown member does nothing.
  void join(Channel& ch, const Member& member);
  void leave(Channel& ch, std::uint64_t session_no, std::string_view action);

  PresenceResult of(Channel& ch);
  // Every channel with members, with its presence, by name.
  std::vector<std::pair<std::string, PresenceResult>> all();
  // The names of the channels where `user` is a member, sorted.
  std::vector<std::string> channels_of_user(std::string_view user);

  // Set once, before any member joins (the broker's start()).
  void set_member_observer(MemberObserver observer) { observer_ = std::move(observer); }

 private:
  friend class Hub;
  Presence(Hub& hub, FeedEventEncoder feed_event) : hub_(hub), feed_event_(std::move(feed_event)) {}

  // With the channel's lock held: a subscription's part (Hub::subscribe, Hub::unsubscribe).
  void subscribe(Channel& ch, std::size_t sink, const Member* member, bool listen);
  void unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member, bool listened);

  void add(Channel& ch, const Member& m);
  void remove(Channel& ch, std::map<std::uint64_t, Member>::iterator it, std::string_view action);
  void feed_event(Channel& ch, std::string_view action, const std::string& user, std::string_view info = {});

  Hub& hub_;
  FeedEventEncoder feed_event_;
  MemberObserver observer_;
};

}  // namespace rtsync::core
