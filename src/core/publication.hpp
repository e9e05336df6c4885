// A publication as kept in history and sent to subscribers (PROTOCOL §4), with the fields the PubNub
// front end adds (timetoken, publisher uuid, meta, custom message type; PROTOCOL §7).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rtsync::core {

struct Publication {
  std::uint64_t offset = 0;  // 1, 2, 3, ... per channel within one epoch
  std::string data;          // compact JSON text, validated when it was published
  std::string from;          // publisher's user id
  std::int64_t ts = 0;       // publish time, milliseconds since the Unix epoch
  std::string audience{};    // empty: every subscriber; else only this user (read = "owner" change feeds)
  // PubNub timetoken: unique and strictly increasing per channel, assigned with the offset (see
  // next_timetoken), so timetokens and offsets address the same history.
  std::uint64_t tt = 0;
  std::string uuid{};        // PubNub publisher id (self-declared by the client); empty: `from` stands in
  std::string meta{};        // PubNub `meta`: compact JSON text, empty when none
  std::string ctype{};       // PubNub custom message type, empty when none
  // PubNub `ttl`: when history stops returning it (ms since the Unix epoch); 0: never. Reads skip it from
  // then on; its row leaves with the channel's trim.
  std::int64_t expires = 0;
  // A transient (Hub::transient: no offset, no history) is a PubNub signal, or, when set, a PubNub
  // message published with store=0, which subscribers get as a message.
  bool unstored = false;
  // PubNub's type of a message that is not a plain one (its subscribe envelope's "e", its history's
  // message_type): 4, a file's message (stored); 3, a message action's event (a transient); else 0.
  std::uint8_t pn_event = 0;
  // Deleted from the store (PubNub deleteMessages) while the hub kept it: the hub keeps its place (offset,
  // timetoken, no data) so that recovery still sees the history as contiguous, and no reader sees it.
  bool deleted = false;
  // A collection's change feed (coll:NAME): the document before the change, as it was served; empty for
  // a create. Live filtered views need it to tell who saw the document leave (docs/protocol.md §6).
  std::string prev{};
};

// What a publication weighs against the payload and history byte limits (limits.max_publication,
// history_bytes): its data, PubNub meta and a change's previous document, the parts that vary in size.
inline std::size_t payload_bytes(const Publication& p) { return p.data.size() + p.meta.size() + p.prev.size(); }

// Publications are immutable once made and shared between history, replies and the store.
using PublicationPtr = std::shared_ptr<const Publication>;

// Whether `user` may see the publication (its audience is everyone, or that user, and it was not deleted).
inline bool visible_to(const Publication& p, std::string_view user) {
  return !p.deleted && (p.audience.empty() || p.audience == user);
}

// Whether a publication's PubNub ttl has run out at `now_ms` (expired ones are no history any more).
inline bool expired(const Publication& p, std::int64_t now_ms) { return p.expires != 0 && p.expires <= now_ms; }

// A position in a channel's stream: the client's "since" (Centrifuge's StreamPosition).
struct StreamPosition {
  std::uint64_t offset = 0;
  std::string epoch;
};

// Publication::pn_event values.
inline constexpr std::uint8_t pn_action_event = 3;
inline constexpr std::uint8_t pn_file_event = 4;

// PubNub timetokens are 100-ns ticks since the Unix epoch (17 digits today).
inline std::uint64_t now_timetoken() {
  using namespace std::chrono;
  const auto ticks = duration_cast<duration<std::int64_t, std::ratio<1, 10'000'000>>>(
      system_clock::now().time_since_epoch()).count();
  return ticks > 0 ? static_cast<std::uint64_t>(ticks) : 0;
}

// The timetoken of a channel's next publication after one stamped `last`: the clock, or `last + 1` when
// the clock did not move past it (two publications in one tick, or a clock set back after a restart).
// Whoever assigns a channel's offsets calls this under the same lock, so the order is the offset order.
inline std::uint64_t next_timetoken(std::uint64_t last) {
  const std::uint64_t now = now_timetoken();
  return now > last ? now : last + 1;
}

}  // namespace rtsync::core
