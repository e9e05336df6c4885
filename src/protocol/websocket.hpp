// RFC 6455 framing, owned by rtsync rather than Beast's websocket::stream: Beast frames one message per
// async_write and writes pongs and closes on its own, which rules out sharing one pre-built frame with
// every subscriber and coalescing everything queued for a socket into one write. Beast still parses the
// HTTP upgrade; after it, these functions are all the protocol there is. No extensions are negotiated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/frame.hpp"

namespace rtsync::protocol::ws {

enum class Opcode : std::uint8_t { cont = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::cont;
  std::uint64_t length = 0;
  std::uint8_t mask[4] = {0, 0, 0, 0};
  std::size_t header_size = 0;
};

enum class ParseResult { ok, need_more, protocol_error };

// Parses the header of a client frame at the start of `data`. Client frames must be masked; reserved
// bits must be clear (no extensions); control frames must be final and at most 125 bytes; opcodes must be
// known. `protocol_error` maps to close 1002.
ParseResult parse_client_header(const std::uint8_t* data, std::size_t size, FrameHeader& h);

// XORs `size` bytes with the mask, `pos` being the index of data[0] within the frame payload.
void unmask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4], std::uint64_t pos);

// Room a builder leaves in front of a payload for the largest header (2 + 8 bytes).
inline constexpr std::size_t max_header = 10;

// Completes a server frame whose payload was written into `buf` after max_header reserved bytes:
// writes the header right before the payload and returns the frame.
core::Frame finish_frame(std::string buf, Opcode op);
// A server frame holding `payload` (copies it).
core::Frame make_frame(Opcode op, std::string_view payload);
// The payload of a close frame: code and UTF-8 reason (truncated to fit 125 bytes).
std::string close_payload(std::uint16_t code, std::string_view reason);

// The close code a peer's close payload asks to echo: its own when valid (1000-1014 but 1004-1006,
// or 3000-4999, with a UTF-8 reason), 1000 when empty, 1002 otherwise.
std::uint16_t close_code_to_echo(std::string_view payload);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

// True when `s` is valid UTF-8 (text frames must be).
bool valid_utf8(std::string_view s);

}  // namespace rtsync::protocol::ws
