// Unit tests of PubNub presence state's pure part (service/pubnub_state.cpp): which text is a state, and
// which state a heartbeat's or subscribe's `state` parameter gives each channel.
#include "service/pubnub_state.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace rtsync::service {
namespace {

using States = std::map<std::string, std::string>;

TEST(PubnubState, AStateIsACompactObjectAndAnEmptyOneClearsIt) {
  EXPECT_EQ(normalize_state(R"( {"mood": "ok", "n": [1, 2]} )"), R"({"mood":"ok","n":[1,2]})");
  EXPECT_EQ(normalize_state("{}"), "null");
  for (const char* bad : {"", "null", "[1]", "\"x\"", "3", "{", R"({"a":1e400})"}) EXPECT_EQ(normalize_state(bad), std::nullopt) << bad;
  EXPECT_EQ(normalize_state("{\"a\":\"" + std::string(kMaxPresenceState, 'x') + "\"}"), std::nullopt);
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "{\"a\":";
  deep += "1" + std::string(40, '}');
  EXPECT_EQ(normalize_state(deep), std::nullopt);
}

TEST(PubnubState, EachChannelOfTheRequestGetsItsOwnKey) {
  EXPECT_EQ(states_for(R"({"a":{"x":1},"b":{},"elsewhere":{"y":2}})", {"a", "b", "c"}),
            (States{{"a", R"({"x":1})"}, {"b", "null"}}));
  EXPECT_EQ(states_for("{}", {"a"}), States{});
}

TEST(PubnubState, AGroupsStateGoesToItsChannelsUnlessTheyHaveTheirOwn) {
  const std::map<std::string, std::vector<std::string>> groups{{"g1", {"a", "b"}}, {"g2", {"b", "c"}}};
  EXPECT_EQ(states_for(R"({"g2":{"from":"g2"},"a":{"own":true},"g1":{"from":"g1"}})", {"a", "b", "c"}, groups),
            (States{{"a", R"({"own":true})"}, {"b", R"({"from":"g2"})"}, {"c", R"({"from":"g2"})"}}));
}

TEST(PubnubState, AStateWithAValueThatIsNoObjectIsTheStateOfEveryChannel) {
  EXPECT_EQ(states_for(R"({"typing":true,"a":{"x":1}})", {"a", "b"}),
            (States{{"a", R"({"typing":true,"a":{"x":1}})"}, {"b", R"({"typing":true,"a":{"x":1}})"}}));
}

TEST(PubnubState, MalformedParametersAreRefused) {
  for (const char* bad : {"", "[]", "{\"a\":1e400}", "{\"a\":{}", "nope"})
    EXPECT_EQ(states_for(bad, {"a"}), std::nullopt) << bad;
}

}  // namespace
}  // namespace rtsync::service
