// Fuzz target: the WebSocket input path of a connection (ws_session.cpp's process_input), without the
// socket. The input is the byte stream a client sends after the upgrade: frame headers are parsed,
// limits applied from the header, payloads unmasked (whole and in two pieces, which must agree),
// fragments reassembled up to the message limit, text checked for UTF-8, and each message split into
// commands whose ids are echoed in a reply, as the server does.
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.hpp"
#include "protocol/websocket.hpp"

namespace ws = rtsync::protocol::ws;

namespace {
constexpr std::size_t max_frame = 64 * 1024;  // the default limits.max_frame

void on_message(std::string_view text) {
  if (!ws::valid_utf8(text)) return;  // close 1007
  for (auto& line : rtsync::protocol::parse_message(text)) {
    if (!line.ok) {
      auto reply = rtsync::protocol::reply_error(line.cmd.id, rtsync::protocol::Code::bad_request, line.error);
      if (reply.empty()) std::abort();
      continue;
    }
    if (line.cmd.op.empty() && !line.cmd.body.contains("op")) std::abort();
    auto reply = rtsync::protocol::reply_ok(line.cmd.id);
    // Replies are compact JSON on one line: a raw newline would split the client's framing.
    if (reply.find('\n') != std::string::npos) std::abort();
    boost::system::error_code ec;
    boost::json::parse(reply, ec);
    if (ec) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> in(data, data + size);
  std::size_t pos = 0;
  std::string message;
  bool in_message = false;
  while (pos < in.size()) {
    ws::FrameHeader h;
    auto r = ws::parse_client_header(in.data() + pos, in.size() - pos, h);
    if (r != ws::ParseResult::ok) break;  // need_more: end of input; protocol_error: close 1002
    if (h.header_size < 6 || h.header_size > 14 || h.header_size > in.size() - pos) std::abort();
    const bool control = h.opcode == ws::Opcode::close || h.opcode == ws::Opcode::ping || h.opcode == ws::Opcode::pong;
    if (control && (h.length > 125 || !h.fin)) std::abort();  // the parser must have refused these
    if (!control) {
      if (h.opcode == ws::Opcode::binary) break;  // close 1003
      if ((h.opcode == ws::Opcode::text && in_message) || (h.opcode == ws::Opcode::cont && !in_message)) break;
      if (message.size() + h.length > max_frame) break;  // close 1009, decided from the header
    }
    if (h.length > in.size() - pos - h.header_size) break;  // the rest of the payload has not arrived
    auto* payload = in.data() + pos + h.header_size;
    const auto len = static_cast<std::size_t>(h.length);
    // Unmasking in two pieces (as reads may split a payload) gives the same bytes as in one.
    std::vector<std::uint8_t> copy(payload, payload + len);
    const std::size_t cut = len == 0 ? 0 : data[size - 1] % (len + 1);
    ws::unmask(copy.data(), cut, h.mask, 0);
    ws::unmask(copy.data() + cut, len - cut, h.mask, cut);
    ws::unmask(payload, len, h.mask, 0);
    if (len && std::memcmp(copy.data(), payload, len) != 0) std::abort();
    std::string_view p(reinterpret_cast<const char*>(payload), len);
    pos += h.header_size + len;
    switch (h.opcode) {
      case ws::Opcode::text:
        if (h.fin) {
          on_message(p);
        } else {
          message.assign(p);
          in_message = true;
        }
        break;
      case ws::Opcode::cont:
        message.append(p);
        if (h.fin) {
          in_message = false;
          on_message(message);
          message.clear();
        }
        break;
      case ws::Opcode::close:
        if (p.size() > 2) (void)ws::valid_utf8(p.substr(2));
        (void)ws::close_payload(1000, p.size() > 2 ? p.substr(2) : std::string_view{});
        break;
      case ws::Opcode::ping:
        (void)ws::make_frame(ws::Opcode::pong, p);
        break;
      default:
        break;
    }
  }
  return 0;
}
