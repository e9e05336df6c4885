// Unit tests of RFC 6455 framing (websocket.cpp): client header parsing and its protocol errors, unmasking
// at any payload position, server frame headers, close payloads, the handshake key and UTF-8 validation.
#include "protocol/websocket.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace rtsync::protocol::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

const std::uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// A masked client header: first byte, then the length in the given encoding (7, 16 or 64 bits, whatever
// the value), then the mask.
Bytes client_header(std::uint8_t b0, std::uint64_t len, int bits, bool masked = true) {
  Bytes h{b0};
  const std::uint8_t m = masked ? 0x80 : 0x00;
  if (bits == 7) {
    h.push_back(static_cast<std::uint8_t>(m | len));
  } else if (bits == 16) {
    h.push_back(m | 126);
    h.push_back(static_cast<std::uint8_t>(len >> 8));
    h.push_back(static_cast<std::uint8_t>(len));
  } else {
    h.push_back(m | 127);
    for (int i = 7; i >= 0; --i) h.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
  }
  if (masked) h.insert(h.end(), kMask, kMask + 4);
  return h;
}

ParseResult parse(const Bytes& b, FrameHeader& h) { return parse_client_header(b.data(), b.size(), h); }
ParseResult parse(const Bytes& b) {
  FrameHeader h;
  return parse(b, h);
}

void expect_mask(const FrameHeader& h) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h.mask[i], kMask[i]) << i;
}

// ---------------------------------------------------------------------------------------------------
// parse_client_header

TEST(WsParseHeader, SevenBitLength) {
  for (std::uint64_t len : {0u, 1u, 5u, 125u}) {
    FrameHeader h;
    auto b = client_header(0x81, len, 7);
    ASSERT_EQ(parse(b, h), ParseResult::ok) << len;
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.opcode, Opcode::text);
    EXPECT_EQ(h.length, len);
    EXPECT_EQ(h.header_size, 6u);
    expect_mask(h);
  }
}

TEST(WsParseHeader, SixteenBitLength) {
  for (std::uint64_t len : {126u, 256u, 1000u, 65535u}) {
    FrameHeader h;
    auto b = client_header(0x82, len, 16);
    ASSERT_EQ(parse(b, h), ParseResult::ok) << len;
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.opcode, Opcode::binary);
    EXPECT_EQ(h.length, len);
    EXPECT_EQ(h.header_size, 8u);
    expect_mask(h);
  }
}

TEST(WsParseHeader, SixtyFourBitLength) {
  for (std::uint64_t len : {std::uint64_t{65536}, std::uint64_t{1} << 32 | 5, (std::uint64_t{1} << 63) - 1}) {
    FrameHeader h;
    auto b = client_header(0x01, len, 64);  // a first fragment, not final
    ASSERT_EQ(parse(b, h), ParseResult::ok) << len;
    EXPECT_FALSE(h.fin);
    EXPECT_EQ(h.opcode, Opcode::text);
    EXPECT_EQ(h.length, len);
    EXPECT_EQ(h.header_size, 14u);
    expect_mask(h);
  }
}

TEST(WsParseHeader, TrailingPayloadBytesIgnored) {
  auto b = client_header(0x81, 3, 7);
  b.insert(b.end(), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  FrameHeader h;
  ASSERT_EQ(parse(b, h), ParseResult::ok);
  EXPECT_EQ(h.length, 3u);
  EXPECT_EQ(h.header_size, 6u);
}

TEST(WsParseHeader, NeedMoreAtEveryTruncation) {
  struct Case {
    Bytes full;
    std::size_t header_size;
  };
  std::vector<Case> cases = {
      {client_header(0x81, 5, 7), 6},
      {client_header(0x82, 300, 16), 8},
      {client_header(0x82, 70000, 64), 14},
      {client_header(0x89, 0, 7), 6},   // ping
      {client_header(0x00, 126, 16), 8},  // continuation
  };
  for (const auto& c : cases) {
    ASSERT_EQ(c.full.size(), c.header_size);
    for (std::size_t n = 0; n < c.header_size; ++n) {
      FrameHeader h;
      EXPECT_EQ(parse_client_header(c.full.data(), n, h), ParseResult::need_more)
          << "header of " << c.header_size << " bytes cut at " << n;
    }
    FrameHeader h;
    EXPECT_EQ(parse_client_header(c.full.data(), c.header_size, h), ParseResult::ok);
    EXPECT_EQ(h.header_size, c.header_size);
  }
}

TEST(WsParseHeader, UnmaskedIsProtocolError) {
  EXPECT_EQ(parse(client_header(0x81, 5, 7, false)), ParseResult::protocol_error);
  EXPECT_EQ(parse(client_header(0x82, 300, 16, false)), ParseResult::protocol_error);
  EXPECT_EQ(parse(client_header(0x82, 70000, 64, false)), ParseResult::protocol_error);
  EXPECT_EQ(parse(client_header(0x89, 0, 7, false)), ParseResult::protocol_error);
  // Known from the first two bytes already.
  Bytes two{0x81, 0x05};
  FrameHeader h;
  EXPECT_EQ(parse_client_header(two.data(), 2, h), ParseResult::protocol_error);
}

TEST(WsParseHeader, ReservedBitsAreProtocolError) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x81 | rsv), 5, 7)), ParseResult::protocol_error)
        << int(rsv);
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x89 | rsv), 0, 7)), ParseResult::protocol_error)
        << int(rsv);
  }
}

TEST(WsParseHeader, KnownOpcodesAccepted) {
  for (std::uint8_t op : {0, 1, 2, 8, 9, 10}) {
    FrameHeader h;
    ASSERT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 4, 7), h), ParseResult::ok) << int(op);
    EXPECT_EQ(static_cast<std::uint8_t>(h.opcode), op);
  }
}

TEST(WsParseHeader, UnknownOpcodesAreProtocolError) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 4, 7)), ParseResult::protocol_error)
        << int(op);
    EXPECT_EQ(parse(client_header(op, 4, 7)), ParseResult::protocol_error) << int(op);
  }
}

TEST(WsParseHeader, ControlFramesMustBeFinalAndShort) {
  for (std::uint8_t op : {8, 9, 10}) {
    EXPECT_EQ(parse(client_header(op, 0, 7)), ParseResult::protocol_error) << "fin=0 op " << int(op);
    EXPECT_EQ(parse(client_header(op, 125, 7)), ParseResult::protocol_error) << "fin=0 op " << int(op);
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 125, 7)), ParseResult::ok) << int(op);
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 126, 16)), ParseResult::protocol_error)
        << "length 126 op " << int(op);
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 65535, 16)), ParseResult::protocol_error)
        << int(op);
    EXPECT_EQ(parse(client_header(static_cast<std::uint8_t>(0x80 | op), 65536, 64)), ParseResult::protocol_error)
        << int(op);
  }
  // Data frames may be non-final and long.
  EXPECT_EQ(parse(client_header(0x02, 126, 16)), ParseResult::ok);
}

TEST(WsParseHeader, NonMinimalLengthIsProtocolError) {
  for (std::uint64_t len : {0u, 1u, 125u})
    EXPECT_EQ(parse(client_header(0x82, len, 16)), ParseResult::protocol_error) << "16-bit " << len;
  for (std::uint64_t len : {0u, 125u, 126u, 65535u})
    EXPECT_EQ(parse(client_header(0x82, len, 64)), ParseResult::protocol_error) << "64-bit " << len;
  // The most significant bit of a 64-bit length must be 0.
  EXPECT_EQ(parse(client_header(0x82, std::uint64_t{1} << 63, 64)), ParseResult::protocol_error);
  EXPECT_EQ(parse(client_header(0x82, ~std::uint64_t{0}, 64)), ParseResult::protocol_error);
  // Boundaries that are minimal.
  EXPECT_EQ(parse(client_header(0x82, 126, 16)), ParseResult::ok);
  EXPECT_EQ(parse(client_header(0x82, 65536, 64)), ParseResult::ok);
}

// ---------------------------------------------------------------------------------------------------
// unmask

TEST(WsUnmask, MatchesByteByByteReferenceAtEveryPosition) {
  std::mt19937 rng(7);
  const std::uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
  for (std::size_t size : {0u, 1u, 2u, 3u, 5u, 7u, 8u, 9u, 13u, 15u, 16u, 17u, 31u, 33u, 63u, 64u, 65u, 1001u}) {
    for (std::uint64_t pos : {0ull, 1ull, 2ull, 3ull, 4ull, 5ull, 6ull, 7ull, (1ull << 32) + 3}) {
      // Start one byte into the buffer so the data is not aligned.
      Bytes buf(size + 1);
      for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
      const Bytes original(buf.begin() + 1, buf.end());
      Bytes expected = original;
      for (std::size_t i = 0; i < size; ++i) expected[i] ^= mask[(pos + i) % 4];

      unmask(buf.data() + 1, size, mask, pos);
      ASSERT_EQ(Bytes(buf.begin() + 1, buf.end()), expected) << "size " << size << " pos " << pos;
      // Masking is its own inverse.
      unmask(buf.data() + 1, size, mask, pos);
      ASSERT_EQ(Bytes(buf.begin() + 1, buf.end()), original) << "size " << size << " pos " << pos;
    }
  }
}

TEST(WsUnmask, ChunksEqualWhole) {
  // A payload unmasked in pieces (as it arrives) equals one unmasked at once.
  std::mt19937 rng(11);
  Bytes payload(257);
  for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
  Bytes whole = payload;
  unmask(whole.data(), whole.size(), kMask, 0);
  for (std::size_t cut1 : {1u, 3u, 8u, 13u}) {
    for (std::size_t cut2 : {20u, 101u, 250u}) {
      Bytes pieces = payload;
      unmask(pieces.data(), cut1, kMask, 0);
      unmask(pieces.data() + cut1, cut2 - cut1, kMask, cut1);
      unmask(pieces.data() + cut2, pieces.size() - cut2, kMask, cut2);
      ASSERT_EQ(pieces, whole) << cut1 << " " << cut2;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Server frames

struct ExpectedHeader {
  std::size_t size;
  Bytes bytes;
};

ExpectedHeader expected_header(std::uint8_t b0, std::size_t len) {
  if (len < 126) return {2, {b0, static_cast<std::uint8_t>(len)}};
  if (len <= 0xffff)
    return {4, {b0, 126, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len & 0xff)}};
  Bytes b{b0, 127};
  for (int i = 7; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(len) >> (8 * i)));
  return {10, b};
}

std::string payload_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

void check_frame(const core::Frame& f, std::uint8_t b0, const std::string& payload) {
  auto eh = expected_header(b0, payload.size());
  auto v = f.view();
  ASSERT_EQ(f.size(), eh.size + payload.size());
  ASSERT_EQ(v.size(), f.size());
  EXPECT_EQ(f.begin, max_header - eh.size);
  EXPECT_EQ(v.data(), f.bytes.data() + f.begin);
  Bytes header(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(eh.size));
  EXPECT_EQ(header, eh.bytes) << "payload " << payload.size();
  EXPECT_EQ(static_cast<std::uint8_t>(v[1]) & 0x80, 0) << "server frames are unmasked";
  EXPECT_TRUE(v.substr(eh.size) == payload) << "payload " << payload.size();
}

TEST(WsFrame, MakeFrameHeaders) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    auto p = payload_of(n);
    SCOPED_TRACE(n);
    check_frame(make_frame(Opcode::text, p), 0x81, p);
  }
}

TEST(WsFrame, MakeFrameOpcodes) {
  check_frame(make_frame(Opcode::binary, "xy"), 0x82, "xy");
  check_frame(make_frame(Opcode::close, "\x03\xe8"), 0x88, "\x03\xe8");
  check_frame(make_frame(Opcode::ping, ""), 0x89, "");
  check_frame(make_frame(Opcode::pong, "abc"), 0x8a, "abc");
}

TEST(WsFrame, FinishFrameWritesHeaderBeforePayload) {
  for (std::size_t n : {0u, 125u, 126u, 65535u, 65536u}) {
    SCOPED_TRACE(n);
    auto p = payload_of(n);
    std::string buf(max_header, '\x55');  // garbage in the reserved room must not leak into the frame
    buf += p;
    auto f = finish_frame(std::move(buf), Opcode::text);
    check_frame(f, 0x81, p);
    EXPECT_EQ(f.bytes.size(), max_header + n);
  }
}

TEST(WsFrame, MaxHeaderIsTen) { EXPECT_EQ(max_header, 10u); }

// ---------------------------------------------------------------------------------------------------
// close_payload

std::uint16_t code_of(const std::string& p) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(p[0]) << 8) | static_cast<std::uint8_t>(p[1]));
}

TEST(WsClosePayload, CodeBigEndianThenReason) {
  auto p = close_payload(1000, "bye");
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(static_cast<std::uint8_t>(p[0]), 0x03);
  EXPECT_EQ(static_cast<std::uint8_t>(p[1]), 0xe8);
  EXPECT_EQ(p.substr(2), "bye");
  p = close_payload(4001, "");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(static_cast<std::uint8_t>(p[0]), 0x0f);
  EXPECT_EQ(static_cast<std::uint8_t>(p[1]), 0xa1);
  EXPECT_EQ(code_of(close_payload(1009, "x")), 1009);
  EXPECT_EQ(code_of(close_payload(65535, "x")), 65535);
}

TEST(WsClosePayload, LongAsciiReasonTruncatedTo125) {
  std::string reason = payload_of(200);
  auto p = close_payload(1002, reason);
  EXPECT_EQ(p.size(), 125u);
  EXPECT_EQ(p.substr(2), reason.substr(0, 123));
  std::string exact = payload_of(123);
  EXPECT_EQ(close_payload(1002, exact).substr(2), exact);
  EXPECT_EQ(close_payload(1002, payload_of(124)).size(), 125u);
}

TEST(WsClosePayload, TruncationKeepsUtf8SequencesWhole) {
  // 2-byte sequences: 123 would split one, so 122 bytes are kept.
  std::string two;
  for (int i = 0; i < 100; ++i) two += "\xc3\xa9";
  auto p = close_payload(1000, two);
  EXPECT_EQ(p.size(), 2u + 122u);
  EXPECT_EQ(p.substr(2), two.substr(0, 122));
  EXPECT_TRUE(valid_utf8(p.substr(2)));

  // 3-byte sequences after one ASCII byte: the cut at 123 falls in the middle; 121 bytes are kept.
  std::string three = "a";
  for (int i = 0; i < 50; ++i) three += "\xe2\x82\xac";
  p = close_payload(1000, three);
  EXPECT_EQ(p.size(), 2u + 121u);
  EXPECT_EQ(p.substr(2), three.substr(0, 121));
  EXPECT_TRUE(valid_utf8(p.substr(2)));

  // 3-byte sequences ending exactly at 123: nothing more is cut.
  std::string aligned;
  for (int i = 0; i < 50; ++i) aligned += "\xe2\x82\xac";
  p = close_payload(1000, aligned);
  EXPECT_EQ(p.size(), 125u);
  EXPECT_TRUE(valid_utf8(p.substr(2)));

  // 4-byte sequences: 123 = 30*4 + 3, so 120 bytes are kept.
  std::string four;
  for (int i = 0; i < 40; ++i) four += "\xf0\x9f\x98\x80";
  p = close_payload(1000, four);
  EXPECT_EQ(p.size(), 2u + 120u);
  EXPECT_EQ(p.substr(2), four.substr(0, 120));
  EXPECT_TRUE(valid_utf8(p.substr(2)));
}

TEST(WsClosePayload, EveryCutPointYieldsValidUtf8) {
  // Mixed widths, shifted by 0..3 ASCII bytes, so the 123-byte limit lands on every byte of a sequence.
  const std::string seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "z"};
  for (int shift = 0; shift < 4; ++shift) {
    std::string reason(static_cast<std::size_t>(shift), 'x');
    for (int i = 0; reason.size() < 200; ++i) reason += seqs[i % 4];
    ASSERT_TRUE(valid_utf8(reason));
    auto p = close_payload(1001, reason);
    EXPECT_LE(p.size(), 125u) << shift;
    EXPECT_GE(p.size(), 2u + 120u) << shift;  // at most 3 bytes dropped to stay whole
    EXPECT_TRUE(valid_utf8(p.substr(2))) << shift;
    EXPECT_EQ(p.substr(2), reason.substr(0, p.size() - 2)) << shift;
  }
}

// ---------------------------------------------------------------------------------------------------
// accept_key

TEST(WsAcceptKey, Rfc6455Example) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsAcceptKey, DependsOnKey) {
  auto a = accept_key("AQIDBAUGBwgJCgsMDQ4PEA==");
  EXPECT_EQ(a.size(), 28u);  // base64 of a 20-byte SHA-1
  EXPECT_NE(a, accept_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_EQ(a, accept_key("AQIDBAUGBwgJCgsMDQ4PEA=="));
}

// ---------------------------------------------------------------------------------------------------
// valid_utf8

TEST(WsUtf8, ValidText) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("hello, world {\"op\":\"ping\"}"));
  EXPECT_TRUE(valid_utf8(std::string_view("nul\0inside", 10)));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9"));                    // U+00E9
  EXPECT_TRUE(valid_utf8("\xc2\x80"));                       // U+0080, smallest 2-byte
  EXPECT_TRUE(valid_utf8("\xdf\xbf"));                       // U+07FF
  EXPECT_TRUE(valid_utf8("\xe0\xa0\x80"));                   // U+0800, smallest 3-byte
  EXPECT_TRUE(valid_utf8("\xe2\x82\xac"));                   // U+20AC
  EXPECT_TRUE(valid_utf8("\xed\x9f\xbf"));                   // U+D7FF, just below the surrogates
  EXPECT_TRUE(valid_utf8("\xee\x80\x80"));                   // U+E000, just above
  EXPECT_TRUE(valid_utf8("\xef\xbf\xbf"));                   // U+FFFF
  EXPECT_TRUE(valid_utf8("\xf0\x90\x80\x80"));               // U+10000, smallest 4-byte
  EXPECT_TRUE(valid_utf8("\xf0\x9f\x98\x80 smile"));         // U+1F600
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));               // U+10FFFF, the largest
  std::string longer;
  for (int i = 0; i < 100; ++i) longer += "abc\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  EXPECT_TRUE(valid_utf8(longer));
}

TEST(WsUtf8, OverlongEncodings) {
  EXPECT_FALSE(valid_utf8("\xc0\x80"));          // U+0000 in 2 bytes
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // '/'
  EXPECT_FALSE(valid_utf8("\xc1\xbf"));
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));      // '/' in 3 bytes
  EXPECT_FALSE(valid_utf8("\xe0\x9f\xbf"));      // U+07FF in 3 bytes
  EXPECT_FALSE(valid_utf8("\xf0\x80\x80\xaf"));  // '/' in 4 bytes
  EXPECT_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in 4 bytes
  EXPECT_FALSE(valid_utf8("ok\xc0\xafok"));
}

TEST(WsUtf8, Surrogates) {
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // U+D800
  EXPECT_FALSE(valid_utf8("\xed\xaf\xbf"));  // U+DBFF
  EXPECT_FALSE(valid_utf8("\xed\xb0\x80"));  // U+DC00
  EXPECT_FALSE(valid_utf8("\xed\xbf\xbf"));  // U+DFFF
  EXPECT_FALSE(valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 pair
}

TEST(WsUtf8, TruncatedSequences) {
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_FALSE(valid_utf8("\xe2\x82"));
  EXPECT_FALSE(valid_utf8("\xe2"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f\x98"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f"));
  EXPECT_FALSE(valid_utf8("abc\xf0"));
  EXPECT_FALSE(valid_utf8("\xc3 after"));       // lead byte followed by ASCII
  EXPECT_FALSE(valid_utf8("\xe2\x82x"));
}

TEST(WsUtf8, OtherInvalidBytes) {
  EXPECT_FALSE(valid_utf8("\x80"));               // a lone continuation byte
  EXPECT_FALSE(valid_utf8("a\xbf" "b"));
  EXPECT_FALSE(valid_utf8("\xfe"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));   // U+110000, above the range
  EXPECT_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
}

TEST(WsUtf8, LongTextWithErrorLate) {
  // Validators often work a word at a time; an error after many valid bytes must still be found.
  std::string s(1000, 'a');
  EXPECT_TRUE(valid_utf8(s));
  for (std::size_t at : {8u, 15u, 500u, 999u}) {
    std::string bad = s;
    bad[at] = '\x80';
    EXPECT_FALSE(valid_utf8(bad)) << at;
  }
  std::string trunc = s + "\xe2\x82";
  EXPECT_FALSE(valid_utf8(trunc));
}

}  // namespace
}  // namespace rtsync::protocol::ws
