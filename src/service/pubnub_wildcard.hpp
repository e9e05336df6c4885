// PubNub wildcard subscribe on rtsync channel names (docs/pubnub.md, section 7.3): `a.*` receives what is
// published on every channel whose name starts with `a.` (`a.x`, `a.x.y`, …), `a.b.*` on those under
// `a.b.`. PubNub's rules: the `*` is only a trailing `.*`, after at most two levels (`a.b.*`, never
// `a.b.c.*`). rtsync's own: a channel matches only a pattern of its namespace (the part before the first
// ':'), so `a.*` never reaches into another namespace's `a.x:y`; server-owned namespaces (coll:, tally:)
// and presence feeds have no wildcards.
//
// A pattern is a channel of its own in the hub (in memory, no history, no presence, read-only), to which
// the PubNub views relay what the matching channels get (core::Hub::relay_to). This file holds the pure
// part: which names are patterns, and which patterns a channel's publications go to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rtsync::service {

// Whether `name` is a wildcard pattern rtsync serves: PREFIX.* where PREFIX is a channel name with at most
// one '.', not ending in '.', outside coll: and tally:, and the pattern no longer than a channel name.
bool valid_wildcard(std::string_view name);

// The patterns that `channel`'s publications go to, shortest first: for `ns:a.b.c`, `ns:a.*` and
// `ns:a.b.*`. None for a presence feed or a name with no '.' after its namespace.
std::vector<std::string> wildcards_of(std::string_view channel);

}  // namespace rtsync::service
