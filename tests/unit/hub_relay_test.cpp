// Unit tests of the hub's relay (core/hub.hpp: set_relay, relay_to), which PubNub wildcards rest on: the
// relay hears every publication and transient that reaches this node, loaded channel or not, once; a
// relay to a channel reaches that channel's sinks as Kind::relayed with its source, after `keep`.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "hub_fixture.hpp"

namespace rtsync::core {
namespace {

using namespace testing;

struct Heard {
  std::string from;
  std::uint64_t offset;
};

TEST(HubRelay, HearsEveryPublicationAndTransientOnceLoadedOrNot) {
  HubFixture f(1);
  std::vector<Heard> heard;
  f.hub.set_relay([&](std::string_view from, const PublicationPtr& p) { heard.push_back({std::string(from), p->offset}); });
  Channel& mem = *f.hub.channel("m.x", memory_opts());
  f.hub.publish(mem, "1", "u", 1);
  Publication sig;
  sig.data = "\"s\"";
  f.hub.transient(mem, sig);
  f.hub.deliver_committed("nowhere.x", make_pub(7));  // not in memory here
  f.hub.channel("cold.x", durable_opts());              // in memory, never loaded
  f.hub.deliver_committed("cold.x", make_pub(3));
  Channel& warm = load_durable(f, "warm.x", ChannelSnapshot{"e", 1, {make_pub(1)}, 0});
  f.hub.deliver_committed("warm.x", make_pub(2));
  f.hub.deliver_committed("warm.x", make_pub(2));       // a duplicate is dropped, not relayed again
  f.hub.deliver_transient("elsewhere.x", make_pub(0));
  ASSERT_EQ(heard.size(), 6u);
  EXPECT_EQ(heard[0].from, "m.x");
  EXPECT_EQ(heard[1].offset, 0u);  // the transient
  EXPECT_EQ(heard[2].from, "nowhere.x");
  EXPECT_EQ(heard[3].from, "cold.x");
  EXPECT_EQ(heard[4].from, "warm.x");
  EXPECT_EQ(heard[4].offset, 2u);
  EXPECT_EQ(heard[5].from, "elsewhere.x");
  EXPECT_EQ(hist(f.hub, warm, HistoryQuery{}).pubs.size(), 2u);
}

TEST(HubRelay, RelayToReachesTheTargetsSinksWithItsSource) {
  HubFixture f(2);
  Channel& target = *f.hub.channel("t.*", memory_opts(0));
  f.hub.listen(target, 1, [](const Kept&) {});
  int kept = 0;
  auto source = std::make_shared<const std::string>("t.a");
  f.hub.relay_to(target, source, make_pub(5, "\"d\""), [&](std::unique_ptr<ChannelAttachment>&) -> std::uint64_t {
    return ++kept + 40;
  });
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(f.sinks[0].size(), 0u);
  auto got = f.sinks[1].all();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Delivery::Kind::relayed);
  EXPECT_EQ(got[0].channel, &target);
  EXPECT_EQ(*got[0].source, "t.a");
  EXPECT_EQ(got[0].pub->offset, 5u);
  EXPECT_EQ(got[0].offset, 41u) << "the delivery carries the relay's place that keep returned";
  EXPECT_EQ(got[0].frame, nullptr);
  EXPECT_TRUE(hist(f.hub, target, HistoryQuery{}).pubs.empty()) << "a relay is no history of the target";
}

}  // namespace
}  // namespace rtsync::core
