// A channel and the values the hub's calls take and give (positions, snapshots, results): what the
// layers that use channels see, apart from the hub (core/hub.hpp), which only the engine and the
// services that drive it include. A Channel's state is the hub's (and its parts': core/presence.hpp,
// core/sequencer.hpp); others see only its name and options.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/frame.hpp"
#include "core/namespace_options.hpp"
#include "core/presence.hpp"
#include "core/publication.hpp"
#include "core/sequencer.hpp"

namespace rtsync::core {

class Channel;
class Hub;
class Presence;

// A channel in use: it stays in memory (and the hub's registry) while a reference exists.
using ChannelRef = std::shared_ptr<Channel>;

// Told of every transient sent on this node (Hub::transient). Called with the channel's lock held, from
// any thread: it must only queue, never block or call back into the hub.
using TransientObserver = std::function<void(const std::string& channel, const PublicationPtr& transient)>;

// What a layer above keeps with each channel (the PubNub views' recent signals): the hub owns it, never
// looks inside, and frees it with the channel. Touched only under the channel's lock, through the hub.
struct ChannelAttachment {
  virtual ~ChannelAttachment() = default;
};
// Given every transient that reaches a channel (this node's and other nodes'), under the channel's lock,
// with the channel's attachment (null until the keeper makes one).
using TransientKeeper = std::function<void(std::unique_ptr<ChannelAttachment>& attachment, const PublicationPtr&)>;

// Told of every publication and transient that reaches a channel of this node (this node's and other
// nodes'), so that it may hand them on to other channels (Hub::relay_to): under the channel's lock when it
// is in memory and loaded (on append, in offset order), else (nobody here keeps it) as it arrives.
using Relay = std::function<void(std::string_view from, const PublicationPtr&)>;

// What a channel keeps, as read() and listen() show it under the channel's lock.
struct Kept {
  const std::deque<PublicationPtr>& history;  // ascending by offset, and so by timetoken
  std::uint64_t offset = 0;                   // the last offset assigned
  std::uint64_t last_tt = 0;                  // the newest timetoken of a publication or transient (0: none)
  const ChannelAttachment* attachment = nullptr;
};

// The state of a durable channel as the store holds it.
struct ChannelSnapshot {
  std::string epoch;
  std::uint64_t offset = 0;             // last offset assigned
  std::vector<PublicationPtr> pubs;     // the kept history, ascending, at most history_size
  std::uint64_t last_tt = 0;            // timetoken of the last offset's publication (0: none yet)
};

// Loads a durable channel's snapshot (the history at most `history_size` publications of at most
// `history_bytes` together, the newest); calls `done` once (on any thread). Injected so the core has no
// dependency on a store. Contract with the store: the snapshot reflects every committed publication whose
// deliver_committed() already ran, and none whose deliver_committed() runs later.
using Loader = std::function<void(const std::string& name, std::size_t history_size, std::size_t history_bytes,
                                  std::function<void(ChannelSnapshot)> done)>;

class Channel {
 public:
  Channel(std::string name, NamespaceOptions opts, std::size_t sinks)
      : name_(std::move(name)), opts_(opts), subscribers_(sinks, 0), presence_(sinks) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::string& name() const { return name_; }
  const NamespaceOptions& options() const { return opts_; }

 private:
  friend class Hub;
  friend class Presence;
  enum class State : std::uint8_t { unloaded, loading, ready };

  // Marks the channel used now (see unload_idle).
  void touch();

  const std::string name_;
  const NamespaceOptions opts_;

  std::mutex mu_;  // guards everything below
  State state_ = State::unloaded;
  std::string epoch_;
  std::uint64_t offset_ = 0;
  std::deque<PublicationPtr> history_;           // newest at the back, within opts_'s count and bytes
  std::size_t history_bytes_ = 0;                // payload_bytes of history_
  std::vector<std::uint32_t> subscribers_;       // per sink
  std::vector<std::function<void(bool)>> waiting_;  // run once loaded
  std::uint64_t last_tt_ = 0;                    // newest timetoken of a publication or transient here
  ChannelPresence presence_;
  Sequencer sequencer_;                          // with gap filling
  std::unique_ptr<ChannelAttachment> attachment_;
  // Steady-clock nanoseconds of the last channel() lookup, unsubscribe or leave (see unload_idle).
  std::atomic<std::int64_t> last_used_{0};
};

struct SubscribeResult {
  std::uint64_t offset = 0;
  std::string epoch;
  bool recovered = false;
  std::vector<PublicationPtr> pubs;  // publications after since.offset when recovered
};

struct HistoryQuery {
  std::size_t limit = 100;
  std::optional<std::uint64_t> since;  // exclusive
  bool reverse = false;                // newest first
};

struct HistoryResult {
  std::uint64_t offset = 0;
  std::string epoch;
  std::vector<PublicationPtr> pubs;
};

// Builds the shared frames of pushes; the hub calls it with the channel lock held.
struct FrameEncoder {
  std::function<FramePtr(const std::string& ch, const Publication&)> publication;
  std::function<FramePtr(const std::string& ch, std::string_view op, const Member&)> presence;
};

}  // namespace rtsync::core
