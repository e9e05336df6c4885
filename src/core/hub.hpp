// The channel hub: registry, per-channel offsets, epochs, bounded history, presence and fan-out.
// It does no I/O. Deliveries go to DeliverySinks (one per I/O thread); each sink owns its part of every
// channel's subscriber list, so a publication is handed to each thread once, never once per subscriber.
//
// Gap-free subscribe: subscribe() takes the channel's snapshot (offset N and the recovered publications)
// and registers the sink in the same critical section as publish() assigns offsets and hands frames to
// sinks. Every publication after N therefore reaches the sink after the subscribe. A sink may still hold
// queued deliveries with offsets <= N from before; it drops them by comparing with the subscriber's N.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/frame.hpp"
#include "core/namespace_options.hpp"
#include "core/publication.hpp"

namespace rtsync::core {

class Channel;

struct Delivery {
  enum class Kind : std::uint8_t { publication, presence };
  const Channel* channel = nullptr;
  FramePtr frame;
  PublicationPtr pub;          // publication: for its audience (empty: everyone)
  std::uint64_t offset = 0;    // publication: its offset; presence: 0
  Kind kind = Kind::publication;
  std::uint64_t origin = 0;    // presence: the session whose join/leave this is (not told of itself)
};

// Receives deliveries for one I/O thread. Called with the channel's lock held, from any thread:
// it must only queue and wake its thread, never block or call back into the hub.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  virtual void deliver(Delivery d) = 0;
};

// A presence member: one subscribed session.
struct Member {
  std::uint64_t session_no = 0;  // process-unique number of the session (fast comparisons)
  std::string session;           // the session id clients see
  std::string user;
  std::string info = "null";     // JSON text shown to others
};

// The state of a durable channel as the store holds it.
struct ChannelSnapshot {
  std::string epoch;
  std::uint64_t offset = 0;             // last offset assigned
  std::vector<PublicationPtr> pubs;     // the kept history, ascending, at most history_size
};

// Loads a durable channel's snapshot; calls `done` once (on any thread). Injected so the core has no
// dependency on a store. Contract with the store: the snapshot reflects every committed publication whose
// deliver_committed() already ran, and none whose deliver_committed() runs later.
using Loader = std::function<void(const std::string& name, std::size_t history_size,
                                  std::function<void(ChannelSnapshot)> done)>;

class Channel {
 public:
  Channel(std::string name, NamespaceOptions opts) : name_(std::move(name)), opts_(opts) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::string& name() const { return name_; }
  const NamespaceOptions& options() const { return opts_; }

 private:
  friend class Hub;
  enum class State : std::uint8_t { unloaded, loading, ready };

  const std::string name_;
  const NamespaceOptions opts_;

  std::mutex mu_;  // guards everything below
  State state_ = State::unloaded;
  std::string epoch_;
  std::uint64_t offset_ = 0;
  std::deque<PublicationPtr> history_;           // newest at the back, at most opts_.history_size
  std::vector<std::uint32_t> subscribers_;       // per sink
  std::vector<std::uint32_t> presence_listeners_;// per sink
  std::map<std::uint64_t, Member> members_;      // by session_no
  std::vector<std::function<void(bool)>> waiting_;  // run once loaded
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

struct PresenceResult {
  std::vector<Member> clients;
  std::size_t users = 0;     // distinct user ids
  std::size_t sessions = 0;  // subscribed sessions
};

// Builds the shared frames of pushes; the hub calls it with the channel lock held.
struct FrameEncoder {
  std::function<FramePtr(const std::string& ch, const Publication&)> publication;
  std::function<FramePtr(const std::string& ch, std::string_view op, const Member&)> presence;
};

class Hub {
 public:
  Hub(std::size_t sink_count, FrameEncoder encoder, Loader loader);
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Sinks are attached once, before any delivery.
  void attach(std::size_t index, DeliverySink* sink);
  std::size_t sink_count() const { return sinks_.size(); }

  // Finds or creates a channel. The reference stays valid for the hub's lifetime.
  Channel& channel(std::string_view name, const NamespaceOptions& opts);
  // Finds a channel, or nullptr.
  Channel* find(std::string_view name);

  // True when the channel's state is in memory (non-durable channels are, from creation). Otherwise
  // starts loading it, if nobody did yet, and returns false: `on_loaded(ok)` then runs once, on the
  // loader's thread, after the load (ok false: the store failed, e.g. while shutting down). Callers that
  // must continue on their own thread post from `on_loaded`.
  bool ready_or_wait(Channel& ch, std::function<void(bool ok)> on_loaded);

  // The calls below require a ready channel.

  // Snapshot + registration, atomically (see the top of this file). `member` adds a presence member and
  // tells presence listeners; `listen_presence` makes the sink receive join/leave of this channel.
  // Recovered publications addressed to another user (Publication::audience) are left out.
  SubscribeResult subscribe(Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                            std::string_view user, const Member* member, bool listen_presence);
  void unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                   bool listened_presence);

  // A non-durable publication: assigns the next offset, keeps it in history, delivers it.
  PublicationPtr publish(Channel& ch, std::string data, std::string from, std::int64_t ts);
  // A durable publication committed by the store: kept and delivered if the channel is in memory
  // (loaded); otherwise the store has it for the next load.
  void deliver_committed(std::string_view name, PublicationPtr pub);

  // Publications addressed to another user than `user` are not visible.
  HistoryResult history(Channel& ch, const HistoryQuery& q, std::string_view user);
  PresenceResult presence(Channel& ch);

  std::size_t channel_count();

 private:
  void fan_out(Channel& ch, const Delivery& d, const std::vector<std::uint32_t>& targets);
  void append(Channel& ch, PublicationPtr pub);

  std::vector<DeliverySink*> sinks_;
  FrameEncoder encoder_;
  Loader loader_;

  std::mutex mu_;  // guards the registry only; channel state has its own lock
  std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
};

}  // namespace rtsync::core
