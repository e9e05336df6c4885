// Wire encoding of pushes and replies, and parsing of incoming commands. Pushes are concatenated from
// already-compact JSON parts (publication data is kept as compact text) so a frame costs one allocation.
#include "protocol/messages.hpp"

#include <boost/json/parse.hpp>

#include <chrono>
#include <boost/json/serialize.hpp>

#include "common/client_json.hpp"
#include "common/json_text.hpp"
#include "protocol/websocket.hpp"

namespace rtsync::protocol {

using common::append_int;
using common::append_json_string;

void append_publication(std::string& out, const core::Publication& p) {
  out += "{\"offset\":";
  append_int(out, p.offset);
  out += ",\"data\":";
  out += p.data;
  out += ",\"from\":";
  append_json_string(out, p.from);
  out += ",\"ts\":";
  append_int(out, p.ts);
  out += '}';
}

void append_publications(std::string& out, const std::vector<core::PublicationPtr>& pubs) {
  out += '[';
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    if (i) out += ',';
    append_publication(out, *pubs[i]);
  }
  out += ']';
}

std::string history_body(const core::HistoryResult& h, std::size_t max_bytes) {
  constexpr std::string_view whole = "]}";
  constexpr std::string_view cut = "],\"truncated\":true}";
  std::string body = "{\"offset\":";
  append_int(body, h.offset);
  body += ",\"epoch\":";
  append_json_string(body, h.epoch);
  body += ",\"pubs\":[";
  for (std::size_t i = 0; i < h.pubs.size(); ++i) {
    const std::size_t before = body.size();
    if (i) body += ',';
    append_publication(body, *h.pubs[i]);
    // Room for the end this answer would have if it stopped here or after the last one.
    const std::size_t end = i + 1 == h.pubs.size() ? whole.size() : cut.size();
    if (body.size() + end > max_bytes) {
      body.resize(before);
      body += cut;
      return body;
    }
  }
  body += whole;
  return body;
}

namespace {
std::string frame_buffer(std::size_t payload_hint) {
  std::string buf(ws::max_header, '\0');
  buf.reserve(ws::max_header + payload_hint);
  return buf;
}
}  // namespace

core::FramePtr msg_frame(const std::string& ch, const core::Publication& p) {
  std::string buf = frame_buffer(64 + ch.size() + p.data.size() + p.from.size());
  buf += "{\"op\":\"msg\",\"ch\":";
  append_json_string(buf, ch);
  buf += ",\"offset\":";
  append_int(buf, p.offset);
  buf += ",\"data\":";
  buf += p.data;
  buf += ",\"from\":";
  append_json_string(buf, p.from);
  buf += ",\"ts\":";
  append_int(buf, p.ts);
  buf += '}';
  auto frame = ws::finish_frame(std::move(buf), ws::Opcode::text);
  frame.built_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch()).count();
  return std::make_shared<const core::Frame>(std::move(frame));
}

void append_member_fields(std::string& out, const core::Member& m) {
  out += "\"session\":";
  append_json_string(out, m.session);
  out += ",\"user\":";
  append_json_string(out, m.user);
  out += ",\"info\":";
  out += m.info;
}

core::FramePtr presence_frame(const std::string& ch, std::string_view op, const core::Member& m) {
  std::string buf = frame_buffer(64 + ch.size() + m.session.size() + m.user.size() + m.info.size());
  buf += "{\"op\":";
  append_json_string(buf, op);
  buf += ",\"ch\":";
  append_json_string(buf, ch);
  buf += ',';
  append_member_fields(buf, m);
  buf += '}';
  return std::make_shared<const core::Frame>(ws::finish_frame(std::move(buf), ws::Opcode::text));
}

core::FrameEncoder frame_encoder() { return core::FrameEncoder{&msg_frame, &presence_frame}; }

std::string hello(std::string_view session, std::string_view user) {
  std::string out = "{\"op\":\"hello\",\"session\":";
  append_json_string(out, session);
  out += ",\"user\":";
  append_json_string(out, user);
  out += ",\"server\":\"rtsync/" RTSYNC_VERSION "\"}";
  return out;
}

std::string bye(std::uint16_t code, std::string_view reason) {
  std::string out = "{\"op\":\"bye\",\"code\":";
  append_int(out, code);
  out += ",\"reason\":";
  append_json_string(out, reason);
  out += '}';
  return out;
}

namespace {
void append_id(std::string& out, const boost::json::value& id) {
  if (id.is_null()) return;
  out += "\"id\":";
  out += boost::json::serialize(id);
  out += ',';
}
}  // namespace

std::string reply_ok(const boost::json::value& id, std::string_view body) {
  std::string out = "{";
  append_id(out, id);
  out += "\"ok\":";
  out += body;
  out += '}';
  return out;
}

std::string reply_error(const boost::json::value& id, Code code, std::string_view message,
                        std::string_view extra) {
  std::string out = "{";
  append_id(out, id);
  out += "\"error\":{\"code\":";
  append_json_string(out, to_string(code));
  out += ",\"message\":";
  append_json_string(out, message);
  if (!extra.empty()) {
    out += ',';
    out += extra;
  }
  out += "}}";
  return out;
}

std::vector<ParsedLine> parse_message(std::string_view text) {
  std::vector<ParsedLine> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;

    ParsedLine& pl = lines.emplace_back();
    boost::system::error_code ec;
    boost::json::value v = common::parse_client_json(line, ec, common::max_json_depth + 1);
    if (ec) {
      pl.error = "not valid JSON: " + common::client_json_error(ec);
      continue;
    }
    if (!v.is_object()) {
      pl.error = "a command must be a JSON object";
      continue;
    }
    auto& obj = v.get_object();
    if (auto* id = obj.if_contains("id")) {
      if (!id->is_number() && !id->is_string()) {
        pl.error = "\"id\" must be a number or a string";
        continue;
      }
      // A number beyond the double range (1e400) parses as infinity, which serializes as non-JSON.
      if (!common::all_numbers_finite(*id)) {
        pl.error = "\"id\" is out of range";
        continue;
      }
      pl.cmd.id = *id;
    }
    if (!common::all_numbers_finite(v)) {
      pl.error = "a number is out of range (beyond ±1.8e308)";
      continue;
    }
    if (common::json_depth(v) > common::max_json_depth + 1) {  // the command's own level, then the data's
      pl.error = "nested deeper than " + std::to_string(common::max_json_depth) + " levels";
      continue;
    }
    auto* op = obj.if_contains("op");
    if (!op || !op->is_string()) {
      pl.error = "\"op\" must be a string";
      continue;
    }
    pl.cmd.op = std::string(op->get_string());
    pl.cmd.body = std::move(obj);
    pl.ok = true;
  }
  return lines;
}

}  // namespace rtsync::protocol
