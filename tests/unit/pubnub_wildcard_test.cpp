// Unit tests of PubNub wildcard patterns (service/pubnub_wildcard.cpp): which names are patterns, and
// which patterns a channel's publications go to.
#include "service/pubnub_wildcard.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rtsync::service {
namespace {

using Names = std::vector<std::string>;

TEST(PubnubWildcard, OnlyATrailingDotStarAfterAtMostTwoLevels) {
  for (const char* ok : {"a.*", "a.b.*", "ns:a.*", "ns:a.b.*", "x.y:a.*", "a_b-c@d.*"}) EXPECT_TRUE(valid_wildcard(ok)) << ok;
  for (const char* bad : {"*", ".*", "a*", "a.", "a.b.c.*", "a.*.c", "a.*.*", "a..*", "a.b..*", "ns:.*", "ns:*",
                          "coll:notes.*", "tally:t.*", "bad name.*", "a.*-pnpres", "ns:a.b.c.*"})
    EXPECT_FALSE(valid_wildcard(bad)) << bad;
  EXPECT_FALSE(valid_wildcard(std::string(127, 'a') + ".*"));
  EXPECT_TRUE(valid_wildcard(std::string(126, 'a') + ".*"));
}

TEST(PubnubWildcard, AChannelGoesToThePatternsOfItsFirstTwoLevels) {
  EXPECT_EQ(wildcards_of("a.b"), (Names{"a.*"}));
  EXPECT_EQ(wildcards_of("a.b.c"), (Names{"a.*", "a.b.*"}));
  EXPECT_EQ(wildcards_of("a.b.c.d"), (Names{"a.*", "a.b.*"}));
  EXPECT_EQ(wildcards_of("ns:a.b.c"), (Names{"ns:a.*", "ns:a.b.*"}));
  EXPECT_EQ(wildcards_of("x.y:a.b"), (Names{"x.y:a.*"})) << "dots of the namespace are no levels";
}

TEST(PubnubWildcard, NoPatternsForFeedsServerOwnedOrUndottedNames) {
  for (const char* none : {"plain", "a.b-pnpres", "coll:a.b", "tally:a.b", "ns:plain", "a.", ".a", "ns:.a", "x.y:z"})
    EXPECT_EQ(wildcards_of(none), Names{}) << none;
  EXPECT_EQ(wildcards_of("a..b"), (Names{"a.*"}));  // `a..*` is no pattern
}

}  // namespace
}  // namespace rtsync::service
