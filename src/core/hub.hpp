// The channel hub: the registry of channels, their offsets, epochs and bounded history, and fan-out to
// the I/O threads. It does no I/O. Deliveries go to DeliverySinks (one per I/O thread); each sink owns
// its part of every channel's subscriber list, so a publication is handed to each thread once, never
// once per subscriber.
//
// A channel's state is under one lock, since what must be atomic spans it (below), but its concerns live
// apart: the hub keeps the registry, the log (offsets, history) and the subscriber counts; presence
// (members, occupancy, feeds) is core/presence.hpp; the decisions about publications from other nodes
// are core/sequencer.hpp. Front ends' views are built above the core from generic calls (read, listen,
// transient, a ChannelAttachment): PubNub's reads by timetoken, long polls and signals are
// service/pubnub_views.hpp, so the core holds no front end's format.
//
// Gap-free subscribe: subscribe() takes the channel's snapshot (offset N and the recovered publications)
// and registers the sink in the same critical section as publish() assigns offsets and hands frames to
// sinks. Every publication after N therefore reaches the sink after the subscribe. A sink may still hold
// queued deliveries with offsets <= N from before; it drops them by comparing with the subscriber's N.
// A presence member joins in that critical section too. listen() does the same for other readers (a
// PubNub long poll: what is kept past its cursor, and registration for what comes next).
//
// In a cluster (docs/scaling.md) durable publications also arrive from other nodes, through the broker,
// and may arrive out of order or not at all (a broker message lost in a Redis blip). With gap filling
// enabled, a publication past the next expected offset is held back and the channel is reloaded from the
// store (the Loader): the missing publications are appended in order, then the held ones. Only a hole
// that the store no longer keeps (trimmed) remains a hole: the history before it is dropped, so recovery
// never spans it. Publications that arrive while a channel loads are held too and applied after the
// snapshot. The Sequencer decides; the hub reads the store and appends.
//
// History is bounded per channel by count (history_size) and by bytes (history_bytes, of payload_bytes):
// the oldest publications go first. Recovery and history read only what the hub keeps. Every
// publication and transient gets a timetoken (core/publication.hpp) under the lock that orders them.
//
// Locks: each channel has its own (a channel's is taken before its presence feed's); the registry's lock
// is taken under a channel's (to find a feed) but never held while waiting for a channel's (unload_idle
// only tries them).
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
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/channel.hpp"
#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/namespace_options.hpp"
#include "core/presence.hpp"
#include "core/publication.hpp"
#include "core/sequencer.hpp"

namespace rtsync::core {

class Hub {
 public:
  // `feed_event`: the data of presence feed events (core/presence.hpp); none: no feed events.
  Hub(std::size_t sink_count, FrameEncoder encoder, Loader loader, FeedEventEncoder feed_event = {});
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
  // Recovered publications addressed to another user (Publication::audience), or whose PubNub ttl ran
  // out (Publication::expires), are left out.
  SubscribeResult subscribe(Channel& ch, std::size_t sink, const std::optional<StreamPosition>& since,
                            std::string_view user, const Member* member, bool listen_presence);
  void unsubscribe(Channel& ch, std::size_t sink, std::uint64_t session_no, bool was_member,
                   bool listened_presence);

  // A non-durable publication: assigns the next offset and timetoken, keeps it in history, delivers it.
  // `draft` carries everything else (offset and tt are overwritten).
  PublicationPtr publish(Channel& ch, Publication draft);
  PublicationPtr publish(Channel& ch, std::string data, std::string from, std::int64_t ts);
  // A durable publication committed by the store: kept and delivered if the channel is in memory
  // (loaded); otherwise the store has it for the next load. Per channel, publications are expected in
  // offset order; an older one is dropped, and one past a hole either opens the hole (the history before
  // it is dropped) or, with gap filling, waits for the store to fill it (see the top of this file).
  void deliver_committed(std::string_view name, PublicationPtr pub);

  // Publications addressed to another user than `user`, and expired ones, are not visible.
  HistoryResult history(Channel& ch, const HistoryQuery& q, std::string_view user);

  // The store deleted the channel's publications with after < timetoken <= until (PubNub deleteMessages):
  // those the channel keeps in memory become deleted ones (Publication::deleted) in their places, which no
  // history, recovery or PubNub read returns; offsets are never reused. Returns how many it had. A channel
  // not in memory has nothing to drop (its next load reads the store).
  std::size_t erase(std::string_view name, std::uint64_t after, std::uint64_t until);

  // Presence: members, occupancy, presence feeds.
  Presence& presence() { return presence_; }

  // For views built above the hub (service/pubnub_views.hpp).
  // Runs `fn` under the channel's lock with what it keeps.
  void read(Channel& ch, const std::function<void(const Kept&)>& fn);
  // Registers the sink like subscribe() (no member, no presence pushes) and runs `fn` with what the
  // channel keeps, in the same critical section. Unregister with unsubscribe(ch, sink, 0, false, false).
  void listen(Channel& ch, std::size_t sink, const std::function<void(const Kept&)>& fn);
  // A transient publication (a PubNub signal): it gets the channel's next timetoken and goes to the sinks
  // with subscribers (Delivery::Kind::signal), but has no offset and is no history: the keeper keeps
  // what it wants of it. `draft` carries everything else.
  PublicationPtr transient(Channel& ch, Publication draft);
  // A transient sent on another node (with its timetoken): kept and delivered like a local one if the
  // channel is in memory; otherwise nobody here waits for it, and it is dropped.
  void deliver_transient(std::string_view name, PublicationPtr transient);
  // Hands a publication or transient of the channel named `source` to `to` (a PubNub wildcard's
  // channel), from the relay (set_relay), under `to`'s lock, taken after the source's if the relay holds
  // it (a channel relayed to is never a source: it has no publications of its own). If `to` is in memory, `keep` gets its
  // attachment and returns the relay's place among `to`'s, and the sinks with subscribers of `to` get a
  // Delivery of Kind::relayed with that place as its offset.
  void relay_to(Channel& to, const std::shared_ptr<const std::string>& source, const PublicationPtr& pub,
                const std::function<std::uint64_t(std::unique_ptr<ChannelAttachment>&)>& keep);
  // Set once, before any delivery: the keeper by the views that keep transients, the observer by the
  // broker (which tells the other nodes), the relay by the views that relay.
  void set_relay(Relay relay) { relay_ = std::move(relay); }
  void set_transient_keeper(TransientKeeper keeper) { keeper_ = std::move(keeper); }
  void set_transient_observer(TransientObserver observer) { transient_observer_ = std::move(observer); }

  // Cluster mode, set once before any delivery. Gap filling: see the top of this file. `filler` reads a
  // channel like the Loader (the default), e.g. after a short delay in which a late publication may arrive.
  void enable_gap_fill(Loader filler = {}) {
    gap_fill_ = true;
    filler_ = std::move(filler);
  }
  // Gap filling: reloads every loaded durable channel from the store and appends what it missed (after
  // the broker lost messages, e.g. while its connection was down). Returns how many channels it checks.
  std::size_t resync_all();

  std::size_t channel_count();
  // The channels in memory now, sorted by name (the Server API's channel list).
  std::vector<ChannelRef> channels();
  // A channel's last offset and epoch; nullopt while it is not loaded (a durable channel being read).
  std::optional<StreamPosition> position(Channel& ch);
  std::uint64_t publication_count() const { return publications_.load(std::memory_order_relaxed); }

 private:
  friend class Presence;

  // Every channel in memory (copied under the registry's lock, to visit without it).
  std::vector<ChannelRef> all_channels();
  void fan_out(const Delivery& d, const std::vector<std::uint32_t>& targets);
  // With the channel's lock held: appends a publication with the next offset and timetoken.
  PublicationPtr append_next(Channel& ch, Publication draft);
  void append(Channel& ch, PublicationPtr pub);
  void keep_transient(Channel& ch, const PublicationPtr& t);
  void start_fill(Channel& ch, std::unique_lock<std::mutex>& lock);
  void apply_fill(Channel& ch, ChannelSnapshot snap);
  void drain(Channel& ch);
  static Kept kept(const Channel& ch);
  void keep(Channel& ch, PublicationPtr pub);
  void clear_history(Channel& ch);
  void trim(Channel& ch);

  bool gap_fill_ = false;
  Loader filler_;
  TransientKeeper keeper_;
  TransientObserver transient_observer_;
  Relay relay_;

  std::vector<DeliverySink*> sinks_;
  FrameEncoder encoder_;
  Loader loader_;
  Presence presence_;

  std::mutex mu_;  // guards the registry only; channel state has its own lock
  std::atomic<std::uint64_t> publications_{0};  // appended, for /metrics
  std::unordered_map<std::string, ChannelRef> channels_;
};

}  // namespace rtsync::core
