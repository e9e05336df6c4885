// Unit tests of the WebSocket reader (protocol/ws_reader.hpp), the one the session and the fuzz target
// drive: messages whole and from fragments, pings between fragments, the limits decided from the header,
// UTF-8, close codes to echo, skipping while closing, `need`, stopping when the connection holds back,
// and the same events whatever the reads' sizes.
#include "protocol/ws_reader.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::protocol::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

const std::uint8_t kMask[4] = {0x11, 0x9c, 0x42, 0xe7};

// A masked client frame.
Bytes frame(std::uint8_t b0, std::string_view payload) {
  Bytes f{b0};
  if (payload.size() < 126) {
    f.push_back(static_cast<std::uint8_t>(0x80 | payload.size()));
  } else {
    f.push_back(0x80 | 126);
    f.push_back(static_cast<std::uint8_t>(payload.size() >> 8));
    f.push_back(static_cast<std::uint8_t>(payload.size()));
  }
  f.insert(f.end(), kMask, kMask + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<std::uint8_t>(payload[i]) ^ kMask[i % 4]);
  return f;
}
Bytes text(std::string_view p, bool fin = true) { return frame(fin ? 0x81 : 0x01, p); }
Bytes cont(std::string_view p, bool fin = true) { return frame(fin ? 0x80 : 0x00, p); }
Bytes ping(std::string_view p) { return frame(0x89, p); }
Bytes close_frame(std::string_view p) { return frame(0x88, p); }
Bytes binary(std::string_view p) { return frame(0x82, p); }

Bytes join(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Recorder {
  std::vector<std::string> events;
  std::size_t stop_after = SIZE_MAX;  // reading() turns false after this many events
  bool reading() const { return events.size() < stop_after; }
  void on_text(std::string_view t) { events.push_back("text " + std::string(t)); }
  void on_ping(std::string_view p) { events.push_back("ping " + std::string(p)); }
  void on_close(std::uint16_t code) { events.push_back("close " + std::to_string(code)); }
  void on_violation(std::uint16_t code, std::string_view reason) {
    events.push_back("violation " + std::to_string(code) + " " + std::string(reason));
  }
};

// Feeds the bytes in reads of `piece` bytes, keeping what was not used, as the session does.
std::vector<std::string> read_all(Bytes in, std::size_t piece = SIZE_MAX, std::size_t max = 1024) {
  Reader r(max);
  Recorder rec;
  Bytes pending;
  for (std::size_t at = 0; at < in.size(); at += std::min(piece, in.size())) {
    pending.insert(pending.end(), in.begin() + at, in.begin() + std::min(in.size(), at + piece));
    std::size_t need = 0;
    pending.erase(pending.begin(), pending.begin() + r.consume(pending.data(), pending.size(), need, rec));
  }
  return rec.events;
}

using Events = std::vector<std::string>;

TEST(WsReader, WholeAndFragmentedMessagesWithPingsBetweenFragments) {
  auto in = join({text("one"), text("tw", false), ping("p"), cont("o", false), cont("!"), text("")});
  const Events want{"text one", "ping p", "text two!", "text "};
  EXPECT_EQ(read_all(in), want);
  for (std::size_t piece = 1; piece < in.size(); ++piece) EXPECT_EQ(read_all(in, piece), want) << piece;
}

TEST(WsReader, NeedIsTheWholeFrameOnceItsHeaderIsThere) {
  Reader r(1024);
  Recorder rec;
  auto f = text(std::string(300, 'x'));
  std::size_t need = 0;
  EXPECT_EQ(r.consume(f.data(), 20, need, rec), 0u);
  EXPECT_EQ(need, f.size());
  need = 0;
  EXPECT_EQ(r.consume(f.data(), 1, need, rec), 0u);
  EXPECT_EQ(need, 0u) << "no header yet: no size known";
  EXPECT_EQ(r.consume(f.data(), f.size(), need, rec), f.size());
  EXPECT_EQ(rec.events, Events{"text " + std::string(300, 'x')});
}

TEST(WsReader, TheSizeLimitCountsEveryFragmentAndIsDecidedFromTheHeader) {
  // The second fragment's header alone is enough to refuse: its payload never has to arrive.
  auto first = text(std::string(600, 'a'), false);
  auto second = cont(std::string(500, 'b'));
  Bytes in = first;
  in.insert(in.end(), second.begin(), second.begin() + 8);
  EXPECT_EQ(read_all(in), (Events{"violation 1009 message too big"}));
  EXPECT_EQ(read_all(join({text(std::string(1024, 'c'))})), (Events{"text " + std::string(1024, 'c')}))
      << "exactly the limit is fine";
}

TEST(WsReader, AViolationOnAWellFramedFrameStillFindsThePeersClose) {
  // The refused frame is skipped like data while closing; the close after it answers ours (code 0).
  EXPECT_EQ(read_all(join({binary("bin"), text("ignored"), close_frame("")})),
            (Events{"violation 1003 binary frames are not supported", "close 0"}));
  EXPECT_EQ(read_all(join({cont("x"), close_frame("")})), (Events{"violation 1002 bad fragmentation", "close 0"}));
  EXPECT_EQ(read_all(join({text("a", false), text("b")})), (Events{"violation 1002 bad fragmentation"}));
}

TEST(WsReader, TextMustBeUtf8WholeOrAcrossFragments) {
  EXPECT_EQ(read_all(text("\xff")), (Events{"violation 1007 text frames must be valid UTF-8"}));
  // A sequence cut between fragments is valid once reassembled; a truncated one is not.
  EXPECT_EQ(read_all(join({text("\xc3", false), cont("\xa9")})), (Events{"text \xc3\xa9"}));
  EXPECT_EQ(read_all(join({text("a", false), cont("\xc3")})), (Events{"violation 1007 text frames must be valid UTF-8"}));
}

TEST(WsReader, CloseCodesToEcho) {
  auto code = [](std::string_view payload) { return read_all(close_frame(payload)); };
  EXPECT_EQ(code(""), Events{"close 1000"});
  EXPECT_EQ(code(std::string("\x03\xe8", 2)), Events{"close 1000"});
  EXPECT_EQ(code(std::string("\x0f\xa0", 2) + "bye"), Events{"close 4000"});
  EXPECT_EQ(code(std::string("\x0b\xb8", 2)), Events{"close 3000"});
  EXPECT_EQ(code(std::string("\x03\xed", 2)), Events{"close 1002"}) << "1005 is never sent";
  EXPECT_EQ(code(std::string("\x03\xec", 2)), Events{"close 1002"}) << "1004 is reserved";
  EXPECT_EQ(code(std::string("\x03\xf7", 2)), Events{"close 1002"}) << "1015 is reserved";
  EXPECT_EQ(code(std::string("\x13\x88", 2)), Events{"close 1002"}) << "5000 is out of range";
  EXPECT_EQ(code("\x03"), Events{"close 1002"}) << "a one-byte payload";
  EXPECT_EQ(code(std::string("\x03\xe8", 2) + "\xff"), Events{"close 1002"}) << "a reason that is not UTF-8";
  // After the peer's close nothing else is read: data is skipped, a second close answers nothing new.
  EXPECT_EQ(read_all(join({close_frame(""), text("late"), close_frame("")})), (Events{"close 1000", "close 0"}));
}

TEST(WsReader, WhileClosingDataIsSkippedWithoutBufferingEvenAcrossReads) {
  Reader r(16);
  Recorder rec;
  r.start_closing();
  auto big = text(std::string(5000, 'z'));  // far over the limit: skipped, not refused
  auto in = join({big, close_frame("")});
  std::size_t need = 0;
  EXPECT_EQ(r.consume(in.data(), 100, need, rec), 100u) << "a partial frame is skipped at once, not kept";
  EXPECT_EQ(need, 0u);
  EXPECT_EQ(r.consume(in.data() + 100, in.size() - 100, need, rec), in.size() - 100);
  EXPECT_EQ(rec.events, Events{"close 0"});
}

TEST(WsReader, AFrameItCannotParseDropsTheRestOfTheInput) {
  Bytes unmasked{0x81, 0x01, 'a'};
  auto in = join({unmasked, text("after")});
  Reader r(1024);
  Recorder rec;
  std::size_t need = 0;
  EXPECT_EQ(r.consume(in.data(), in.size(), need, rec), in.size());
  EXPECT_EQ(rec.events, Events{"violation 1002 protocol error"});
  EXPECT_TRUE(r.closing());
}

TEST(WsReader, StopsBeforeTheNextFrameWhenTheConnectionHoldsBack) {
  auto a = text("a");
  auto in = join({a, text("b"), text("c")});
  Reader r(1024);
  Recorder rec;
  rec.stop_after = 1;
  std::size_t need = 0;
  EXPECT_EQ(r.consume(in.data(), in.size(), need, rec), a.size()) << "only the first frame is used";
  rec.stop_after = SIZE_MAX;
  EXPECT_EQ(r.consume(in.data() + a.size(), in.size() - a.size(), need, rec), in.size() - a.size());
  EXPECT_EQ(rec.events, (Events{"text a", "text b", "text c"}));
}

}  // namespace
}  // namespace rtsync::protocol::ws
