// RFC 6455 frame headers, masking and the handshake key. See websocket.hpp for why rtsync frames itself.
#include "protocol/websocket.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <boost/beast/websocket/detail/utf8_checker.hpp>

#include <cstring>

#include "protocol/errors.hpp"

namespace rtsync::protocol::ws {

ParseResult parse_client_header(const std::uint8_t* d, std::size_t n, FrameHeader& h) {
  if (n < 2) return ParseResult::need_more;
  h.fin = (d[0] & 0x80) != 0;
  if ((d[0] & 0x70) != 0) return ParseResult::protocol_error;  // RSV1-3 without an extension
  auto op = static_cast<std::uint8_t>(d[0] & 0x0f);
  switch (op) {
    case 0: case 1: case 2: case 8: case 9: case 10: break;
    default: return ParseResult::protocol_error;
  }
  h.opcode = static_cast<Opcode>(op);
  if ((d[1] & 0x80) == 0) return ParseResult::protocol_error;  // clients must mask
  std::uint64_t len = d[1] & 0x7f;
  std::size_t pos = 2;
  if (len == 126) {
    if (n < 4) return ParseResult::need_more;
    len = (std::uint64_t{d[2]} << 8) | d[3];
    if (len < 126) return ParseResult::protocol_error;  // must use the shortest encoding
    pos = 4;
  } else if (len == 127) {
    if (n < 10) return ParseResult::need_more;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | d[2 + i];
    if (len < 65536 || (len >> 63) != 0) return ParseResult::protocol_error;
    pos = 10;
  }
  if (op >= 8 && (!h.fin || len > 125)) return ParseResult::protocol_error;
  if (n < pos + 4) return ParseResult::need_more;
  std::memcpy(h.mask, d + pos, 4);
  h.length = len;
  h.header_size = pos + 4;
  return ParseResult::ok;
}

void unmask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4], std::uint64_t pos) {
  // Word-at-a-time XOR: payloads are unmasked once per message, on the I/O thread.
  std::uint8_t rotated[8];
  for (int i = 0; i < 8; ++i) rotated[i] = mask[(pos + i) & 3];
  std::uint64_t m8;
  std::memcpy(&m8, rotated, 8);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= m8;
    std::memcpy(data + i, &w, 8);
  }
  for (; i < size; ++i) data[i] ^= rotated[i & 7];
}

core::Frame finish_frame(std::string buf, Opcode op) {
  const std::size_t len = buf.size() - max_header;
  std::size_t hsize = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
  auto* h = reinterpret_cast<std::uint8_t*>(buf.data()) + (max_header - hsize);
  h[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(op));
  if (len < 126) {
    h[1] = static_cast<std::uint8_t>(len);
  } else if (len <= 0xffff) {
    h[1] = 126;
    h[2] = static_cast<std::uint8_t>(len >> 8);
    h[3] = static_cast<std::uint8_t>(len);
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(len) >> (56 - 8 * i));
  }
  core::Frame f;
  f.bytes = std::move(buf);
  f.begin = static_cast<std::uint32_t>(max_header - hsize);
  return f;
}

core::Frame make_frame(Opcode op, std::string_view payload) {
  std::string buf(max_header, '\0');
  buf.append(payload);
  return finish_frame(std::move(buf), op);
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xff));
  // Control frames carry at most 125 bytes; cut the reason on a UTF-8 boundary.
  std::size_t n = std::min<std::size_t>(reason.size(), 123);
  while (n > 0 && n < reason.size() && (static_cast<unsigned char>(reason[n]) & 0xc0) == 0x80) --n;
  p.append(reason.substr(0, n));
  return p;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string in(client_key);
  in.append(guid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

bool valid_utf8(std::string_view s) {
  // Beast's validator (compiled into the server by asio_impl.cpp) is well tested and fast.
  return boost::beast::websocket::detail::check_utf8(s.data(), s.size());
}

std::uint16_t close_code_to_echo(std::string_view payload) {
  if (payload.empty()) return close_code::normal;
  if (payload.size() == 1) return close_code::protocol_error;
  const auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                               static_cast<unsigned char>(payload[1]));
  // 1004-1006 and 1015 are reserved for local use; 1015-2999 are the protocol's, 3000-4999 applications'.
  const bool known = (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
                     (code >= 3000 && code <= 4999);
  return known && valid_utf8(payload.substr(2)) ? code : close_code::protocol_error;
}

}  // namespace rtsync::protocol::ws
