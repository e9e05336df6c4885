// The RFC 6455 reader of a client connection: frames in, messages out. It holds what a connection must
// remember between reads (a message being reassembled from fragments, the rest of a frame being skipped
// while closing) and nothing of the socket; the connection calls consume() on the bytes it read and hears
// back through its handler, as uWebSockets' WebSocketProtocol::consume calls handleFragment/forceClose.
// The session (server/ws_session.cpp), the unit tests and the fuzz target all drive this one reader.
//
// What it enforces, from each frame's header before any of the payload is buffered: masking, reserved
// bits, known opcodes, control frame rules, minimal length encodings (parse_client_header), no binary
// frames (1003), fragmentation order (1002) and the message size limit, fragments included (1009). Text
// messages must be valid UTF-8 (1007). A close frame's code and reason are validated (an invalid one is
// answered with 1002). Once closing, data frames are skipped without being buffered, and only the peer's
// close frame is looked for.
//
// Handler, the connection:
//   bool reading()                         false: stop before the next frame (the connection holds back
//                                          its commands, or is gone); consume() returns what it used
//   void on_text(std::string_view)         a whole text message, valid UTF-8
//   void on_ping(std::string_view)         a ping's payload (answer with a pong)
//   void on_close(std::uint16_t code)      the peer's close: the code to echo (1002 for an invalid close),
//                                          or 0 when it answers a close the connection sent first
//   void on_violation(std::uint16_t code, std::string_view reason)
//                                          the peer broke the protocol or a limit: close with `code`. The
//                                          reader is closing from then on; after a frame it could not
//                                          parse (1002 "protocol error") the rest of the input is dropped,
//                                          since the stream is out of step
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/errors.hpp"
#include "protocol/websocket.hpp"

namespace rtsync::protocol::ws {

class Reader {
 public:
  explicit Reader(std::size_t max_message) : max_message_(max_message) {}

  // From now on only a close frame matters: data is skipped, a fragment being reassembled is dropped.
  void start_closing() {
    closing_ = true;
    std::string().swap(message_);
  }
  bool closing() const { return closing_; }

  // Handles the complete frames at the start of data[0, size), unmasking them in place; returns how many
  // bytes it used. The connection keeps the rest for the next call. `need`: the size of the incomplete
  // frame left, when its header is complete (so the connection can make room for it at once).
  template <class Handler>
  std::size_t consume(std::uint8_t* data, std::size_t size, std::size_t& need, Handler& h);

 private:
  template <class Handler>
  void refuse(Handler& h, std::uint16_t code, std::string_view reason) {
    start_closing();
    h.on_violation(code, reason);
  }

  const std::size_t max_message_;
  std::string message_;      // the fragments of a text message so far
  bool in_message_ = false;  // a text frame without fin was seen
  std::size_t skip_ = 0;     // bytes of a frame being discarded while closing
  bool closing_ = false;
};

template <class Handler>
std::size_t Reader::consume(std::uint8_t* data, std::size_t size, std::size_t& need, Handler& h) {
  std::size_t pos = 0;
  if (skip_ > 0) {
    pos = std::min(skip_, size);
    skip_ -= pos;
    if (skip_ > 0) return pos;
  }
  while (h.reading()) {
    FrameHeader f;
    auto r = parse_client_header(data + pos, size - pos, f);
    if (r == ParseResult::protocol_error) {
      refuse(h, close_code::protocol_error, "protocol error");
      return size;
    }
    if (r == ParseResult::need_more) break;

    const bool data_frame = f.opcode == Opcode::text || f.opcode == Opcode::binary || f.opcode == Opcode::cont;
    // A frame refused here is well framed: it is skipped like any data while closing.
    if (!closing_ && data_frame) {
      if (f.opcode == Opcode::binary) {
        refuse(h, close_code::unsupported, "binary frames are not supported");
      } else if ((f.opcode == Opcode::text && in_message_) || (f.opcode == Opcode::cont && !in_message_)) {
        refuse(h, close_code::protocol_error, "bad fragmentation");
      } else if (message_.size() + f.length > max_message_) {
        refuse(h, close_code::too_big, "message too big");
      }
    }
    const std::size_t total = f.header_size + static_cast<std::size_t>(f.length);
    if (closing_ && f.opcode != Opcode::close) {
      const std::size_t avail = size - pos;
      if (avail < total) {
        skip_ = total - avail;
        return size;
      }
      pos += total;
      continue;
    }
    if (size - pos < total) {
      need = total;
      break;
    }
    auto* payload = data + pos + f.header_size;
    unmask(payload, static_cast<std::size_t>(f.length), f.mask, 0);
    std::string_view p(reinterpret_cast<const char*>(payload), static_cast<std::size_t>(f.length));
    pos += total;
    switch (f.opcode) {
      case Opcode::text:
        if (!f.fin) {
          message_.assign(p);
          in_message_ = true;
          break;
        }
        if (!valid_utf8(p)) {
          refuse(h, close_code::invalid_utf8, "text frames must be valid UTF-8");
          break;
        }
        h.on_text(p);
        break;
      case Opcode::cont: {
        message_.append(p);
        if (!f.fin) break;
        in_message_ = false;
        std::string whole = std::move(message_);
        message_.clear();
        if (!valid_utf8(whole)) {
          refuse(h, close_code::invalid_utf8, "text frames must be valid UTF-8");
          break;
        }
        h.on_text(whole);
        break;
      }
      case Opcode::ping:
        h.on_ping(p);
        break;
      case Opcode::close: {
        const bool answer = closing_;  // our close went first: this one answers it
        start_closing();
        h.on_close(answer ? std::uint16_t(0) : close_code_to_echo(p));
        break;
      }
      default:  // pong: nothing to do; binary was refused above
        break;
    }
  }
  return pos;
}

}  // namespace rtsync::protocol::ws
