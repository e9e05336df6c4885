// The Redis broker's bus messages (broker/bus_codec.hpp): every kind round-trips byte for byte, the wire
// format is the one the nodes of a running cluster speak, and malformed input is refused, never misread.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <variant>

#include "broker/bus_codec.hpp"

namespace rtsync::broker::bus {
namespace {

core::PublicationPtr publication() {
  auto p = std::make_shared<core::Publication>();
  p->offset = 42;
  p->tt = 17000000000000001;
  p->ts = -5;  // whatever the publisher's clock said
  p->from = "alice";
  p->audience = "bob";
  p->prev = R"({"a":1,"id":"d","_v":1,"_owner":"bob"})";
  p->uuid = "pn-uuid";
  p->meta = R"({"k":1})";
  p->ctype = "text";
  p->expires = 1700000000123;
  p->pn_event = 4;
  p->data = std::string("{\"x\":\"a:b\\n\"}\0tail", 17);  // colons, newlines, a NUL: byte for byte
  return p;
}

template <class T>
T decoded(const std::string& bytes, const std::string& node = "rt1") {
  auto m = decode(bytes);
  EXPECT_TRUE(m.has_value()) << bytes;
  if (!m) return T{};
  EXPECT_EQ(m->node, node);
  EXPECT_TRUE(std::holds_alternative<T>(m->body)) << bytes;
  return std::holds_alternative<T>(m->body) ? std::get<T>(m->body) : T{};
}

TEST(BrokerBusCodec, APublicationRoundTripsWithEveryField) {
  const auto in = publication();
  const auto out = decoded<Publication>(encode("rt1", Publication{"news", in}));
  EXPECT_EQ(out.channel, "news");
  ASSERT_TRUE(out.pub);
  EXPECT_EQ(out.pub->offset, in->offset);
  EXPECT_EQ(out.pub->tt, in->tt);
  EXPECT_EQ(out.pub->ts, in->ts);
  EXPECT_EQ(out.pub->from, in->from);
  EXPECT_EQ(out.pub->audience, in->audience);
  EXPECT_EQ(out.pub->prev, in->prev);
  EXPECT_EQ(out.pub->uuid, in->uuid);
  EXPECT_EQ(out.pub->meta, in->meta);
  EXPECT_EQ(out.pub->ctype, in->ctype);
  EXPECT_EQ(out.pub->expires, in->expires);
  EXPECT_EQ(out.pub->pn_event, 4);
  EXPECT_EQ(out.pub->data, in->data);
}

TEST(BrokerBusCodec, ASignalCarriesNoOffsetNorAudience) {
  const auto out = decoded<Signal>(encode("rt1", Signal{"chat", publication()}));
  EXPECT_EQ(out.channel, "chat");
  ASSERT_TRUE(out.signal);
  EXPECT_EQ(out.signal->offset, 0u);
  EXPECT_EQ(out.signal->audience, "");
  EXPECT_EQ(out.signal->tt, 17000000000000001u);
  EXPECT_EQ(out.signal->data, publication()->data);
  EXPECT_EQ(out.signal->expires, 0);  // transients are no history
  EXPECT_FALSE(out.signal->unstored);
}

// A PubNub message published with store=0 travels as a transient that says so.
TEST(BrokerBusCodec, AnUnstoredMessageIsATransientThatSaysSo) {
  auto p = std::make_shared<core::Publication>(*publication());
  p->unstored = true;
  const auto out = decoded<Signal>(encode("rt1", Signal{"chat", p}));
  ASSERT_TRUE(out.signal);
  EXPECT_TRUE(out.signal->unstored);
  EXPECT_EQ(out.signal->data, p->data);
}

TEST(BrokerBusCodec, PresenceMessagesRoundTrip) {
  const auto j = decoded<Join>(encode("rt1", Join{3, "room", core::Member{9, "s9", "carol", R"({"a":1})", true}}));
  EXPECT_EQ(j.round, 3u);
  EXPECT_EQ(j.channel, "room");
  EXPECT_EQ(j.member.session_no, 9u);
  EXPECT_EQ(j.member.session, "s9");
  EXPECT_EQ(j.member.user, "carol");
  EXPECT_EQ(j.member.info, R"({"a":1})");
  EXPECT_FALSE(j.member.remote);  // the receiver decides
  const auto l = decoded<Leave>(encode("rt1", Leave{"room", 9, "timeout"}));
  EXPECT_EQ(l.channel, "room");
  EXPECT_EQ(l.session_no, 9u);
  EXPECT_EQ(l.action, "timeout");
  EXPECT_EQ(decoded<End>(encode("rt1", End{4})).round, 4u);
  decoded<Hello>(encode("rt1", Hello{}));
  decoded<Lost>(encode("rt1", Lost{}));
}

// The format the nodes of a cluster already speak: a node of this build and one of the previous build
// must understand each other during a rolling upgrade.
TEST(BrokerBusCodec, TheWireFormatIsStable) {
  EXPECT_EQ(encode("rt1", Leave{"room", 9, "leave"}), "1:L3:rt14:room1:95:leave");
  EXPECT_EQ(encode("rt1", End{12}), "1:E3:rt12:12");
  EXPECT_EQ(encode("rt1", Hello{}), "1:H3:rt1");
  EXPECT_EQ(encode("rt1", Lost{}), "1:R3:rt1");
  EXPECT_EQ(encode("n", Join{1, "c", core::Member{2, "s", "u", "null"}}), "1:J1:n1:11:c1:21:s1:u4:null");
  core::Publication p;
  p.offset = 7;
  p.tt = 8;
  p.ts = 9;
  p.data = "{}";
  EXPECT_EQ(encode("n", Publication{"c", std::make_shared<core::Publication>(p)}),
            "1:P1:n1:c1:71:81:90:0:0:0:0:2:{}0:1:01:0");
  // From nodes of builds before prev, before expires and before pn_event: the same publication, those empty.
  EXPECT_EQ(decoded<Publication>("1:P1:n1:c1:71:81:90:0:0:0:0:2:{}", "n").pub->data, "{}");
  EXPECT_EQ(decoded<Publication>("1:P1:n1:c1:71:81:90:0:0:0:0:2:{}0:", "n").pub->expires, 0);
  EXPECT_EQ(decoded<Publication>("1:P1:n1:c1:71:81:90:0:0:0:0:2:{}0:1:0", "n").pub->pn_event, 0);
  EXPECT_EQ(encode("n", Signal{"c", std::make_shared<core::Publication>(p)}), "1:S1:n1:c1:81:90:0:0:0:2:{}1:01:0");
  // From nodes of builds before unstored and before pn_event: a signal.
  EXPECT_FALSE(decoded<Signal>("1:S1:n1:c1:81:90:0:0:0:2:{}", "n").signal->unstored);
  EXPECT_EQ(decoded<Signal>("1:S1:n1:c1:81:90:0:0:0:2:{}1:0", "n").signal->pn_event, 0);
}

TEST(BrokerBusCodec, ATransientCarriesItsPubnubEvent) {
  auto p = std::make_shared<core::Publication>(*publication());
  p->pn_event = 3;
  EXPECT_EQ(decoded<Signal>(encode("rt1", Signal{"chat", p})).signal->pn_event, 3);
}

TEST(BrokerBusCodec, AnUnknownLeaveActionIsALeave) {
  EXPECT_EQ(decoded<Leave>("1:L3:rt14:room1:94:gone").action, "leave");
}

TEST(BrokerBusCodec, FieldsAfterTheKnownOnesAreIgnored) {
  EXPECT_EQ(decoded<End>(encode("rt1", End{4}) + "5:extra").round, 4u);
  EXPECT_EQ(decoded<Publication>(encode("rt1", Publication{"news", publication()}) + "1:x").pub->offset, 42u);
}

TEST(BrokerBusCodec, MalformedMessagesAreRefused) {
  const std::string pub = encode("rt1", Publication{"news", publication()});
  // Where messages of builds before pn_event, expires and prev end (they decode: see the wire format test).
  const std::size_t before_pn_event = pub.size() - std::string("1:4").size();
  const std::string expires = std::to_string(publication()->expires);
  const std::size_t before_expires = before_pn_event - (std::to_string(expires.size()) + ":").size() - expires.size();
  const std::size_t before_prev = before_expires - (std::to_string(publication()->prev.size()) + ":").size() -
                                  publication()->prev.size();
  for (std::size_t cut = 0; cut < pub.size(); ++cut) {
    // Cut anywhere before its last field ends, a publication is incomplete.
    if (cut == before_prev || cut == before_expires || cut == before_pn_event) continue;
    EXPECT_FALSE(decode(pub.substr(0, cut)).has_value()) << pub.substr(0, cut);
  }
  const char* bad[] = {
      "",                          // nothing
      "1:X3:rt1",                  // an unknown kind
      "1:P",                       // no node
      "1:H3:rt",                   // a length past the end
      "x:H3:rt1",                  // a length that is no number
      "-1:H3:rt1",                 // nor a negative one
      ":H3:rt1",                   // nor an empty one
      "1H3:rt1",                   // no colon where the length ends
      "1:E3:rt11:x",               // a round that is no number
      "1:E3:rt12:-1",              // a negative one
      "1:E3:rt13:1 2",             // one with trailing characters
      "1:E3:rt120:99999999999999999999",  // past 64 bits
      "1:E3:rt1",                  // no round
      "1:L3:rt14:room1:9",         // a leave without its action
      "1:J3:rt11:14:room1:92:s95:carol",  // a join without its info
      "1:P3:rt14:news1:x",         // an offset that is no number
      "1:S3:rt14:news1:81:x0:0:0:0:2:{}",  // a ts that is no number
      "1:S3:rt14:news1:81:90:0:0:0:2:{}1:2",  // unstored neither 0 nor 1
      "1:P3:rt14:news1:71:81:90:0:0:0:0:2:{}0:1:x",  // an expiry that is no number
  };
  for (const char* b : bad) EXPECT_FALSE(decode(b).has_value()) << b;
}

TEST(BrokerBusCodec, PresenceHashEntries) {
  EXPECT_EQ(presence_field("room", 9), "room\n9");
  EXPECT_EQ(presence_value(core::Member{9, "s9", "carol", "null"}), "2:s95:carol4:null");
}

}  // namespace
}  // namespace rtsync::broker::bus
