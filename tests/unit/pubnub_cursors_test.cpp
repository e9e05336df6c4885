// Unit tests of the remembered PubNub subscribe cursors (service/pubnub_cursors.cpp): an answer's cursor
// is the timetoken it covers, found again only for its uuid; one uuid answered differently at the same
// timetoken gets the next free one; the oldest are forgotten past the bound.
#include "service/pubnub_cursors.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace rtsync::service {
namespace {

PubnubCursors::Marks marks(std::uint64_t pub_tt, std::uint64_t relay = 0) {
  return {{"a", Resume{pub_tt, 5, relay, relay > 0}}, {"b", Resume::after(7)}};
}

TEST(PubnubCursors, AnAnswersCursorIsFoundAgainForItsUuidOnly) {
  PubnubCursors c;
  EXPECT_EQ(c.issue(100, "u", marks(90)), 100u);
  auto found = c.find(100, "u");
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, marks(90));
  EXPECT_FALSE(c.find(100, "v")) << "another uuid's cursor resumes by its timetoken";
  EXPECT_FALSE(c.find(101, "u"));
}

TEST(PubnubCursors, TheSameAnswerSharesItsCursorAndADifferentOneTakesTheNextFree) {
  PubnubCursors c;
  EXPECT_EQ(c.issue(100, "u", marks(90)), 100u);
  EXPECT_EQ(c.issue(100, "u", marks(90)), 100u) << "an idle or repeated answer keeps the cursor";
  EXPECT_EQ(c.issue(100, "v", marks(80)), 100u) << "uuids do not meet";
  EXPECT_EQ(c.issue(100, "u", marks(95)), 101u);
  EXPECT_EQ(c.issue(100, "u", marks(96, 3)), 102u);
  EXPECT_EQ(*c.find(100, "u"), marks(90));
  EXPECT_EQ(*c.find(101, "u"), marks(95));
  EXPECT_EQ(*c.find(102, "u"), marks(96, 3));
  EXPECT_EQ(*c.find(100, "v"), marks(80));
}

TEST(PubnubCursors, TheOldestAreForgottenPastTheBound) {
  PubnubCursors c;
  for (std::uint64_t i = 0; i <= PubnubCursors::kEntries; ++i) c.issue(1000 + i, "u", marks(i));
  EXPECT_FALSE(c.find(1000, "u"));
  EXPECT_TRUE(c.find(1001, "u"));
  EXPECT_TRUE(c.find(1000 + PubnubCursors::kEntries, "u"));
}

}  // namespace
}  // namespace rtsync::service
