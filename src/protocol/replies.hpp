// The bodies of successful answers (the BODY of {"id":…,"ok":BODY}, PROTOCOL §4), built once for every
// front end: REST answers the same bodies where its shape is the WebSocket one (publish, tally, delete),
// and its array of documents from the same helper. JSON texts coming from the store (documents, tallies)
// are inserted as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/channel.hpp"

namespace rtsync::protocol {

std::string offset_body(std::uint64_t offset);  // {"offset":N}: a publication's ack
std::string version_body(std::uint64_t v);      // {"v":N}: a deleted document's last version
std::string doc_body(std::string_view doc);     // {"doc":DOC}
std::string data_body(std::string_view data);  // {"data":…}: an rpc's answer (compact JSON)
std::string user_body(std::string_view user);   // {"user":"…"}: auth
// {"tally":T,"offset":N,"epoch":"E"}
std::string tally_body(std::string_view tally, std::uint64_t offset, std::string_view epoch);
// {"docs":[…],"offset":N,"epoch":"E"}
// `next`: the cursor of the next page; none: the last page (null).
std::string list_body(const std::vector<std::string>& docs, std::uint64_t offset, std::string_view epoch,
                      const std::optional<std::string>& next);
// [DOC,DOC,…]
void append_json_texts(std::string& out, const std::vector<std::string>& texts);
// {"clients":[{"session","user","info"}…],"users":N,"sessions":N}
std::string presence_body(const core::PresenceResult& p);
// {"offset":N,"epoch":"E","recovered":B,"pubs":[…]}. A recovery longer than `room` is not sent:
// recovered false and truncated true tell the client that the publications after its `since` are kept up
// to `offset` but must be read with `history` (or its state reloaded), since they would not fit its queue.
std::string sub_body(const core::SubscribeResult& r, std::size_t room);

}  // namespace rtsync::protocol
