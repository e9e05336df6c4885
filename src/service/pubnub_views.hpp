// PubNub's views of a channel (PROTOCOL §7), built on what the hub keeps: reads by timetoken (history,
// message counts, the newest timetoken), long polls, and signals. Timetokens are assigned with offsets
// (core/publication.hpp), so both address the same history; what is PubNub's lives here, above the core.
//
// A long poll (poll()) must not miss what is published while it registers: it registers and reads
// what is past its cursor in one critical section (core::Hub::listen), like a WebSocket subscribe.
// Signals, messages published with store=0 and message action events are transient publications
// (core::Hub::transient): they reach the long polls pending now, and the last few are kept, with the
// channel and under its lock (core::Hub::set_transient_keeper), for the long polls that catch up between
// two requests; other nodes' transients are kept alike. Reads by timetoken skip publications whose PubNub
// ttl ran out.
//
// Wildcard subscribe (service/pubnub_wildcard.hpp): a pattern is a channel to which the views relay what
// every matching channel appends or sends (core::Hub::set_relay, Hub::relay_to), once some pattern was
// resolved (wildcards_on()); the pattern keeps the last ones with its transients, for the long polls that
// catch up.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/channel.hpp"

namespace rtsync::service {

// A read by PubNub timetoken: publications with after < tt <= until.
struct TimetokenQuery {
  std::uint64_t after = 0;
  std::uint64_t until = UINT64_MAX;
  std::size_t limit = 100;
  bool oldest = false;  // take the oldest `limit` in the range, else the newest; ascending either way
};

// A publication or signal of another channel, relayed to a wildcard pattern's channel.
struct Relayed {
  core::PublicationPtr pub;  // a transient (offset 0) is a signal
  std::shared_ptr<const std::string> source;  // the channel it was published on
  std::uint64_t seq = 0;     // its place among the pattern's relays (1, 2, …; the delivery's offset)
};

// Where a long poll resumes on one channel, per stream. Timetokens grow within each stream of a channel
// (its publications, its transients), not across them: a durable publication is stamped in the store's
// transaction and appended after the commit, a transient at once. A pattern's relays come from many
// channels, so only their order of arrival (seq) is a position. From a client's cursor alone every stream
// resumes after that timetoken (relays_by_seq false); from an earlier answer's marks
// (service/pubnub_cursors.hpp) each resumes exactly where that answer left it.
struct Resume {
  std::uint64_t pub_tt = 0;        // publications with a later timetoken
  std::uint64_t transient_tt = 0;  // transients with a later timetoken
  std::uint64_t relay = 0;         // relays with a later seq, or with relays_by_seq false a later timetoken
  bool relays_by_seq = false;

  static Resume after(std::uint64_t cursor) { return Resume{cursor, cursor, cursor, false}; }
  bool operator==(const Resume&) const = default;
};

struct PollResult {
  std::uint64_t offset = 0;                  // the sink is registered for publications after this offset
  std::uint64_t last_tt = 0;                 // the channel's newest timetoken
  std::uint64_t relay_seq = 0;               // a pattern's: the seq of its newest relay
  std::vector<core::PublicationPtr> pubs;    // kept publications past the resume point, ascending, at most limit
  std::vector<core::PublicationPtr> signals; // kept transients past it, ascending, at most limit
  std::vector<Relayed> relayed;              // a pattern's: kept relays past it, in relay order, at most limit
};

class PubnubViews {
 public:
  // Installs the hub's transient keeper and relay: build it before any delivery.
  explicit PubnubViews(core::Hub& hub);

  // A wildcard pattern's channel exists from now on: relaying starts (until then it costs nothing).
  void wildcards_on() { wildcards_.store(true, std::memory_order_relaxed); }

  // Registers the sink for what comes next and returns, atomically with it, what the channel keeps past
  // `from` (publications `user` may read, and transients; each ascending, at most `limit`).
  // Unregister with core::Hub::unsubscribe(ch, sink, 0, false, false).
  PollResult poll(core::Channel& ch, std::size_t sink, const Resume& from, std::size_t limit, std::string_view user);
  // A signal, or with draft.unstored a store=0 message: the channel's next timetoken, delivered to pending
  // long polls, no offset, no history.
  core::PublicationPtr signal(core::Channel& ch, core::Publication draft);

  // Kept publications by timetoken that `user` may read, ascending.
  std::vector<core::PublicationPtr> history(core::Channel& ch, const TimetokenQuery& q, std::string_view user);
  // How many of them have a timetoken after `after` (at most the kept history).
  std::size_t count_after(core::Channel& ch, std::uint64_t after, std::string_view user);
  // The newest timetoken the channel has seen, of a publication or a signal (0: none).
  std::uint64_t last_timetoken(core::Channel& ch);

 private:
  void relay(std::string_view from, const core::PublicationPtr& pub);

  core::Hub& hub_;
  std::atomic<bool> wildcards_{false};
};

}  // namespace rtsync::service
