// The channel hub: registry, per-channel offsets, epochs, bounded history, presence and fan-out.
// It does no I/O. Deliveries go to DeliverySinks (one per I/O thread); each sink owns its part of every
// channel's subscriber list, so a publication is handed to each thread once, never once per subscriber.
//
// Gap-free subscribe: subscribe() takes the channel's snapshot (offset N and the recovered publications)
// and registers the sink in the same critical section as publish() assigns offsets and hands frames to
// sinks. Every publication after N therefore reaches the sink after the subscribe. A sink may still hold
// queued deliveries with offsets <= N from before; it drops them by comparing with the subscriber's N.
// PubNub long polls use the same mechanism by timetoken (poll()): what is kept past the client's cursor,
// and registration for what comes next, in one critical section.
//
// Presence is by session (members) and, derived from it, by user: a channel's occupancy is its number of
// distinct users. When that set changes (a user's first session joined, its last one left), the hub
// publishes a PubNub-style event on the channel's presence feed, the in-memory channel NAME-pnpres, if
// that channel exists (someone subscribed to or read it): {"action":"join"|"leave"|"timeout",
// "timestamp":UNIX_S,"uuid":USER,"occupancy":N}. Lock order: a channel, then its feed (feeds never have
// members, so never feeds of their own). The registry's lock is taken under a channel's (to find a feed)
// but never held while waiting for a channel's (unload_idle only tries them).
//
// In a cluster (docs/scaling.md) durable publications also arrive from other nodes, through the broker,
// and may arrive out of order or not at all (a broker message lost in a Redis blip). With gap filling
// enabled, a publication past the next expected offset is held back and the channel is reloaded from the
// store (the Loader): the missing publications are appended in order, then the held ones. Only a hole
// that the store no longer keeps (trimmed) remains a hole: the history before it is dropped, so recovery
// never spans it. Publications that arrive while a channel loads are held too and applied after the
// snapshot. Members mirrored from other nodes (Member::remote) are members like any other, but the
// member observer, which tells the other nodes, only hears of this node's own.
//
// History is bounded per channel by count (history_size) and by bytes (history_bytes, of payload_bytes):
// the oldest publications go first. Recovery and history read only what the hub keeps.
//
// Unloading: channels nobody uses leave memory (unload_idle(), called periodically). Whoever uses a channel
// holds a ChannelRef for as long as it does (a subscription, a pending long poll, a read waiting for its
// load, a mirrored member), so a channel is unloaded only when the registry holds the only reference, it
// has no members, no load or gap fill is under way, and nobody looked it up (channel()) or left it since
// the cutoff. A durable channel is loaded again from the store, with the same epoch and offsets; an
// in-memory one starts over with a new epoch, which tells recovering clients to reload, as after a
// restart. A delivery may still wait in a sink's queue after its channel was unloaded (the channel's last
// subscriber on that sink left before it): sinks use Delivery::channel only to find their own
// subscribers of it, of which they then have none (server::Worker drains its queue in order, ahead of any
// later subscription, so a new channel at the same address never receives it).
#pragma once

#include <atomic>
#include <chrono>
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
#include <utility>
#include <vector>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/namespace_options.hpp"
#include "core/publication.hpp"

namespace rtsync::core {

class Channel;
// A channel in use: it stays in memory (and the hub's registry) while a reference exists.
using ChannelRef = std::shared_ptr<Channel>;

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
// Told of every PubNub signal sent on this node (same calling rules as MemberObserver).
using SignalObserver = std::function<void(const std::string& channel, const PublicationPtr& signal)>;

// The suffix of a channel's presence feed (PubNub's naming).
inline constexpr std::string_view presence_feed_suffix = "-pnpres";

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
  std::deque<PublicationPtr> history_;           // newest at the back, within opts_'s count and bytes
  std::size_t history_bytes_ = 0;                // payload_bytes of history_
  std::vector<std::uint32_t> subscribers_;       // per sink
  std::vector<std::uint32_t> presence_listeners_;// per sink
  std::map<std::uint64_t, Member> members_;      // by session_no
  std::unordered_map<std::string, std::size_t> users_;  // members per user id; its size is the occupancy
  std::vector<std::function<void(bool)>> waiting_;  // run once loaded
  std::uint64_t last_tt_ = 0;                    // newest timetoken of a publication or signal here
  std::deque<PublicationPtr> signals_;           // recent signals, for long polls that catch up
  ChannelRef feed_;                              // NAME-pnpres once it exists (found lazily)
  std::map<std::uint64_t, PublicationPtr> ahead_;  // gap filling: publications past a hole, by offset
  bool filling_ = false;                         // gap filling: a reload from the store is under way
  std::vector<std::function<void(bool)>> fill_waiting_;  // run once the fill under way is done
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

// A read by PubNub timetoken: publications with after < tt <= until.
struct TimetokenQuery {
  std::uint64_t after = 0;
  std::uint64_t until = UINT64_MAX;
  std::size_t limit = 100;
  bool oldest = false;  // take the oldest `limit` in the range, else the newest; ascending either way
};

struct PollResult {
  std::uint64_t offset = 0;            // the sink is registered for publications after this offset
  std::uint64_t last_tt = 0;           // the channel's newest timetoken
  std::vector<PublicationPtr> pubs;    // kept publications with tt > the cursor, ascending, at most limit
  std::vector<PublicationPtr> signals; // kept signals with tt > the cursor, ascending, at most limit
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

  // Finds or creates a channel, and marks it used (see unload_idle).
  ChannelRef channel(std::string_view name, const NamespaceOptions& opts);
  // Finds a channel in memory, or nullptr.
  ChannelRef find(std::string_view name);
  // Drops from memory every channel nobody holds a reference to, without members, loads or gap fills
  // under way, and not used since `cutoff` (see the top of this file). Returns how many.
  std::size_t unload_idle(std::chrono::steady_clock::time_point cutoff);

  // True when the channel's state is in memory (non-durable channels are, from creation). Otherwise
  // starts loading it, if nobody did yet, and returns false: `on_loaded(ok)` then runs once, on the
  // loader's thread, after the load (ok false: the store failed, e.g. while shutting down). Callers that
  // must continue on their own thread post from `on_loaded`.
  // With gap filling, `at_least` is an offset a client has seen (its `since`): a ready channel behind it
  // (this node has not received that publication from the node that made it yet) is filled from the
  // store first, and `on_loaded(true)` runs after that fill.
  bool ready_or_wait(Channel& ch, std::function<void(bool ok)> on_loaded, std::uint64_t at_least = 0);

  // The calls below require a ready channel.

  // Snapshot + registration, atomically (see the top of this file). `member` adds a presence member and
  // tells presence listeners; `listen_presence` makes the sink receive join/leave of this channel.
  // Recovered publications addressed to another user (Publication::audience) are left out.
  SubscribeResult subscribe(Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                            std::string_view user, const Member* member, bool listen_presence);
  void unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                   bool listened_presence);

  // PubNub long poll: registers the sink like subscribe() (no member, no presence pushes) and returns,
  // atomically with it, what the channel keeps past timetoken `after` (publications and signals, each
  // ascending, at most `limit`). Unregister with unsubscribe(ch, sink, 0, false, false).
  PollResult poll(Channel& ch, std::size_t sink, std::uint64_t after, std::size_t limit, std::string_view user);

  // A non-durable publication: assigns the next offset and timetoken, keeps it in history, delivers it.
  // `draft` carries everything else (offset and tt are overwritten).
  PublicationPtr publish(Channel& ch, Publication draft);
  PublicationPtr publish(Channel& ch, std::string data, std::string from, std::int64_t ts);
  // A PubNub signal: gets the channel's next timetoken and goes to the sinks with subscribers, but has no
  // offset and is no history: only the last few are kept, for long polls that catch up.
  PublicationPtr signal(Channel& ch, Publication draft);
  // A durable publication committed by the store: kept and delivered if the channel is in memory
  // (loaded); otherwise the store has it for the next load. Per channel, publications are expected in
  // offset order; an older one is dropped, and one past a hole either opens the hole (the history before
  // it is dropped) or, with gap filling, waits for the store to fill it (see the top of this file).
  void deliver_committed(std::string_view name, PublicationPtr pub);

  // Cluster mode, set once before any delivery. Gap filling: see the top of this file. `filler` reads a
  // channel like the Loader (the default), e.g. after a short delay in which a late publication may arrive.
  void enable_gap_fill(Loader filler = {}) {
    gap_fill_ = true;
    filler_ = std::move(filler);
  }
  void set_member_observer(MemberObserver observer) { member_observer_ = std::move(observer); }
  void set_signal_observer(SignalObserver observer) { signal_observer_ = std::move(observer); }
  // A signal sent on another node (with its timetoken): kept and delivered like a local one if the channel
  // is in memory; otherwise nobody here waits for it, and it is dropped (signals are not history).
  void deliver_signal(std::string_view name, PublicationPtr signal);
  // Gap filling: reloads every loaded durable channel from the store and appends what it missed (after
  // the broker lost messages, e.g. while its connection was down). Returns how many channels it checks.
  std::size_t resync_all();

  // Publications addressed to another user than `user` are not visible.
  HistoryResult history(Channel& ch, const HistoryQuery& q, std::string_view user);
  // Kept publications by timetoken, ascending.
  std::vector<PublicationPtr> history_tt(Channel& ch, const TimetokenQuery& q, std::string_view user);
  // How many kept publications have a timetoken after `after` (at most the kept history).
  std::size_t count_after(Channel& ch, std::uint64_t after, std::string_view user);
  // The newest timetoken the channel has seen (0: none).
  std::uint64_t last_timetoken(Channel& ch);

  PresenceResult presence(Channel& ch);
  // A member that is no subscriber of this hub's sinks (a PubNub uuid kept present by heartbeats):
  // added, or removed with `action` ("leave" or "timeout") as the feed's event. The channel need not be
  // loaded. Removing an unknown member does nothing.
  void join(Channel& ch, const Member& member);
  void leave(Channel& ch, std::uint64_t session_no, std::string_view action);
  // Every channel with members, with its presence, by name.
  std::vector<std::pair<std::string, PresenceResult>> presence_all();
  // The names of the channels where `user` is a member, sorted.
  std::vector<std::string> channels_of_user(std::string_view user);

  std::size_t channel_count();
  std::uint64_t publication_count() const { return publications_.load(std::memory_order_relaxed); }

 private:
  void fan_out(Channel& ch, const Delivery& d, const std::vector<std::uint32_t>& targets);
  void append(Channel& ch, PublicationPtr pub);
  void add_member(Channel& ch, const Member& m);
  void remove_member(Channel& ch, std::map<std::uint64_t, Member>::iterator it, std::string_view action);
  void feed_event(Channel& ch, std::string_view action, const std::string& user);
  void start_fill(Channel& ch, std::unique_lock<std::mutex>& lock);
  void apply_fill(Channel& ch, ChannelSnapshot snap);
  void drain_ahead(Channel& ch);
  void keep_signal(Channel& ch, const PublicationPtr& sig);
  static void touch(Channel& ch);
  void keep(Channel& ch, PublicationPtr pub);
  void clear_history(Channel& ch);
  void trim(Channel& ch);
  bool gap_fill_ = false;
  Loader filler_;
  MemberObserver member_observer_;
  SignalObserver signal_observer_;

  std::vector<DeliverySink*> sinks_;
  FrameEncoder encoder_;
  Loader loader_;

  std::mutex mu_;  // guards the registry only; channel state has its own lock
  std::atomic<std::uint64_t> publications_{0};  // appended, for /metrics
  std::unordered_map<std::string, ChannelRef> channels_;
};

}  // namespace rtsync::core
