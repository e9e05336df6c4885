// Encoding of everything the server sends over WebSocket (PROTOCOL §4), and the split of incoming
// messages into commands. Pushes that go to many connections come out as ready frames (core::Frame);
// replies are JSON text that the session batches into frames.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/frame.hpp"
#include "core/channel.hpp"
#include "core/publication.hpp"
#include "protocol/errors.hpp"

namespace rtsync::protocol {

// {"offset":N,"data":…,"from":"…","ts":T}
void append_publication(std::string& out, const core::Publication& p);
// [pub, pub, ...]
void append_publications(std::string& out, const std::vector<core::PublicationPtr>& pubs);

// {"offset":N,"epoch":"E","pubs":[…]}: the body of a history answer, over WebSocket and REST alike, at
// most `max_bytes` long: the publications that fit, in order, and `"truncated":true` after `pubs` when
// some did not (the client reads on with `since`), so that an answer never overflows what its
// connection may queue.
std::string history_body(const core::HistoryResult& h, std::size_t max_bytes);

// "session":"…","user":"…","info":… of a presence member (in presence pushes and the presence answer).
void append_member_fields(std::string& out, const core::Member& m);

// The shared push frames built by the hub.
core::FramePtr msg_frame(const std::string& ch, const core::Publication& p);
core::FramePtr presence_frame(const std::string& ch, std::string_view op, const core::Member& m);
core::FrameEncoder frame_encoder();

std::string hello(std::string_view session, std::string_view user);
std::string bye(std::uint16_t code, std::string_view reason);

// {"id":ID,"ok":BODY}; BODY is JSON object text. A null id is left out.
std::string reply_ok(const boost::json::value& id, std::string_view body = "{}");
// {"id":ID,"error":{"code":"…","message":"…"[,EXTRA]}}; EXTRA is extra members' JSON text, without braces.
std::string reply_error(const boost::json::value& id, Code code, std::string_view message,
                        std::string_view extra = {});

// One incoming command: a JSON object from a line of a text message.
struct Command {
  boost::json::value id;     // as the client sent it; null when absent
  std::string op;
  boost::json::object body;  // the whole object
};

// Result of parsing one line: a command, or the error to reply (with whatever id could be read).
struct ParsedLine {
  bool ok = false;
  Command cmd;
  std::string error;  // when !ok: the message of a bad_request reply
};

// Splits a text message on '\n' and parses each non-empty line.
std::vector<ParsedLine> parse_message(std::string_view text);

}  // namespace rtsync::protocol
