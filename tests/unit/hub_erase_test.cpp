// Unit tests of Hub::erase (core/hub.hpp), which PubNub deleteMessages rests on: publications deleted from
// the store leave every read of what the hub keeps, their places stay (offsets are never reused and
// recovery across them is still possible), and their bytes no longer count.
#include <gtest/gtest.h>

#include <vector>

#include "hub_fixture.hpp"

namespace rtsync::core {
namespace {

using namespace testing;

TEST(HubErase, DeletedPublicationsLeaveEveryReadAndKeepTheirPlaces) {
  HubFixture f(1);
  Channel& ch = *f.hub.channel("c", memory_opts());
  std::vector<PublicationPtr> pubs;
  for (int i = 0; i < 5; ++i) pubs.push_back(f.hub.publish(ch, "\"0123456789\"", "u", 1));
  EXPECT_EQ(f.hub.erase("c", pubs[0]->tt, pubs[2]->tt), 2u);  // offsets 2 and 3
  EXPECT_EQ(f.hub.erase("c", pubs[0]->tt, pubs[2]->tt), 0u);  // already gone
  EXPECT_EQ(f.hub.erase("elsewhere", 0, UINT64_MAX), 0u);
  EXPECT_EQ(offsets_of(hist(f.hub, ch, HistoryQuery{}).pubs), (std::vector<std::uint64_t>{1, 4, 5}));

  const auto epoch = sub(f.hub, ch, 0, std::nullopt, nullptr, false).epoch;
  auto from1 = sub(f.hub, ch, 0, StreamPosition{1, epoch}, nullptr, false);
  EXPECT_TRUE(from1.recovered) << "nothing after offset 1 was trimmed";
  EXPECT_EQ(offsets_of(from1.pubs), (std::vector<std::uint64_t>{4, 5}));
  auto from0 = sub(f.hub, ch, 0, StreamPosition{0, epoch}, nullptr, false);
  EXPECT_TRUE(from0.recovered);
  EXPECT_EQ(offsets_of(from0.pubs), (std::vector<std::uint64_t>{1, 4, 5}));
  EXPECT_EQ(f.hub.publish(ch, "1", "u", 1)->offset, 6u);

  // In memory, the deleted ones keep their places (no data), so offsets stay contiguous there.
  bool seen_deleted = false;
  f.hub.read(ch, [&](const Kept& k) {
    for (const auto& p : k.history) seen_deleted = seen_deleted || p->deleted;
    EXPECT_EQ(k.history.size(), 6u);
  });
  EXPECT_TRUE(seen_deleted) << "their places are kept";
}

}  // namespace
}  // namespace rtsync::core
