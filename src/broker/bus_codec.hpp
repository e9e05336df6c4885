// The messages the nodes of a cluster send each other on the Redis bus (PREFIX:bus; docs/scaling.md), to
// and from bytes. Pure functions: no I/O, no state. A message is a list of length-prefixed fields
// ("5:hello"), so publication data travel byte for byte: its kind, the sending node, then the kind's own:
//   P  a committed publication: channel, offset, timetoken, ts, from, audience, uuid, meta, ctype, data,
//      then prev (a change's previous document), expires (a PubNub ttl's end) and pn_event (4: a PubNub
//      file's message; absent: 0), last, so that nodes of a build before them ignore them;
//   S  a transient (no offset, no audience): channel, timetoken, ts, from, uuid, meta, ctype, data, then
//      unstored ("1": a PubNub message published with store=0; "0" or absent: a signal), then pn_event
//      (3: a PubNub message action's event; absent: 0);
//   J  a presence member of the sender joined (or was re-announced): announcement round, channel, its
//      session number on the sender, session id, user, info;
//   L  one left: channel, session number, action ("leave" or "timeout");
//   E  the end of the sender's announcement round N: the receivers' mirrored members of that node that
//      round N did not name have left meanwhile;
//   H  the sender (re)subscribed: every node re-announces its members;
//   R  the sender lost publications it could not send: every node reloads its channels from the store;
//   D  publications of a channel were deleted from the store: channel, after, until (timetokens).
// decode() refuses anything malformed (a field cut short, a number that is not one, a kind it does not
// know, a field missing) and ignores fields after those it knows, so a later version may append some.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/channel.hpp"
#include "core/publication.hpp"

namespace rtsync::broker::bus {

struct Publication {  // P
  std::string channel;
  core::PublicationPtr pub;
};
struct Signal {  // S
  std::string channel;
  core::PublicationPtr signal;
};
struct Join {  // J
  std::uint64_t round = 0;
  std::string channel;
  core::Member member;  // session_no is the sender's; `remote` does not travel
};
struct Leave {  // L
  std::string channel;
  std::uint64_t session_no = 0;
  std::string action;  // "timeout", or "leave" for anything else
};
struct End {  // E
  std::uint64_t round = 0;
};
struct Hello {};  // H
struct Lost {};   // R
struct Erased {   // D
  std::string channel;
  std::uint64_t after = 0;
  std::uint64_t until = 0;
};

using Body = std::variant<Publication, Signal, Join, Leave, End, Hello, Lost, Erased>;

struct Message {
  std::string node;  // the sender
  Body body;
};

std::string encode(std::string_view node, const Body& body);
std::optional<Message> decode(std::string_view bytes);

// A member in the sender's presence hash PREFIX:presence:NODE, kept for operators: its field
// ("CHANNEL\nSESSION_NO") and its value (the fields session id, user, info).
std::string presence_field(std::string_view channel, std::uint64_t session_no);
std::string presence_value(const core::Member& m);

}  // namespace rtsync::broker::bus
