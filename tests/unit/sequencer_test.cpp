// Unit tests of the gap-fill sequencer alone (core/sequencer.cpp), without a hub: where an arrival goes,
// what is held past a hole and handed back once it is filled, and the bookkeeping of fills and their
// waiters. The hub running fills against a store: hub_cluster_test.cpp.
#include "core/sequencer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rtsync::core {
namespace {

using Step = Sequencer::Step;
using Offsets = std::vector<std::uint64_t>;

PublicationPtr pub(std::uint64_t offset) {
  Publication p;
  p.offset = offset;
  p.data = std::to_string(offset);
  return std::make_shared<const Publication>(std::move(p));
}

Offsets offsets(const std::vector<PublicationPtr>& pubs) {
  Offsets out;
  for (const auto& p : pubs) out.push_back(p->offset);
  return out;
}

TEST(Sequencer, PlaceWithoutGapFilling) {
  EXPECT_EQ(Sequencer::place(3, 5), Step::drop);
  EXPECT_EQ(Sequencer::place(5, 5), Step::drop);
  EXPECT_EQ(Sequencer::place(6, 5), Step::append);
  EXPECT_EQ(Sequencer::place(7, 5), Step::open_hole);
  EXPECT_EQ(Sequencer::place(1, 0), Step::append);  // a channel's first publication
}

TEST(Sequencer, InOrderAndDuplicateArrivalsAreNotHeld) {
  Sequencer s;
  EXPECT_EQ(s.arrive(pub(3), 2), Step::append);
  EXPECT_EQ(s.arrive(pub(2), 2), Step::drop);
  EXPECT_EQ(s.arrive(pub(1), 2), Step::drop);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.held(), 0u);
}

TEST(Sequencer, TheFirstArrivalPastAHoleStartsTheOnlyFill) {
  Sequencer s;
  EXPECT_EQ(s.arrive(pub(5), 2), Step::fill);
  EXPECT_TRUE(s.filling());
  EXPECT_EQ(s.arrive(pub(6), 2), Step::hold);  // a fill is under way already
  EXPECT_EQ(s.arrive(pub(3), 2), Step::append);  // the next one still goes at once
  EXPECT_EQ(s.held(), 2u);
  EXPECT_FALSE(s.idle());
}

TEST(Sequencer, DrainHandsBackWhatFollowsOnInOrder) {
  Sequencer s;
  s.arrive(pub(8), 2);
  s.arrive(pub(6), 2);
  s.arrive(pub(5), 2);
  EXPECT_TRUE(s.drain(2).empty());  // 3 and 4 are still missing
  EXPECT_EQ(s.held(), 3u);
  EXPECT_EQ(offsets(s.drain(4)), (Offsets{5, 6}));  // then 7 is missing
  EXPECT_EQ(s.held(), 1u);
  EXPECT_EQ(offsets(s.drain(7)), (Offsets{8}));
  EXPECT_EQ(s.held(), 0u);
}

TEST(Sequencer, DrainForgetsWhatTheChannelHasAlready) {
  Sequencer s;
  s.arrive(pub(4), 1);
  s.arrive(pub(5), 1);
  s.arrive(pub(7), 1);
  // A fill brought everything up to 5: held 4 and 5 are duplicates now.
  EXPECT_EQ(offsets(s.drain(5)), Offsets{});
  EXPECT_EQ(s.held(), 1u);
  EXPECT_EQ(offsets(s.drain(6)), (Offsets{7}));
}

TEST(Sequencer, AnOffsetIsHeldOnce) {
  Sequencer s;
  s.arrive(pub(4), 1);
  s.arrive(pub(4), 1);
  s.hold(pub(4));
  EXPECT_EQ(s.held(), 1u);
  EXPECT_EQ(offsets(s.drain(3)), (Offsets{4}));
}

TEST(Sequencer, HeldWhileLoadingThenDrainedAfterTheSnapshot) {
  Sequencer s;
  s.hold(pub(5));
  s.hold(pub(4));
  s.hold(pub(2));
  EXPECT_FALSE(s.filling());  // holding alone starts no fill
  EXPECT_EQ(offsets(s.drain(3)), (Offsets{4, 5}));  // the snapshot had 1..3
  EXPECT_TRUE(s.idle());
}

TEST(Sequencer, ClearForgetsEverythingHeld) {
  Sequencer s;
  s.hold(pub(5));
  s.hold(pub(6));
  s.clear();
  EXPECT_EQ(s.held(), 0u);
  EXPECT_TRUE(s.drain(4).empty());
}

TEST(Sequencer, AFloodPastTheLimitDropsTheNewest) {
  Sequencer s;
  for (std::uint64_t o = 2; o <= Sequencer::max_held + 2; ++o) s.arrive(pub(o), 0);
  EXPECT_EQ(s.held(), Sequencer::max_held);
  const auto drained = s.drain(1);
  ASSERT_EQ(drained.size(), Sequencer::max_held);
  EXPECT_EQ(drained.back()->offset, Sequencer::max_held + 1);  // max_held + 2 was not held
}

TEST(Sequencer, FillsAndTheirWaiters) {
  Sequencer s;
  std::vector<std::string> ran;
  EXPECT_TRUE(s.wait_fill([&](bool ok) { ran.push_back(ok ? "a:ok" : "a:fail"); }));  // the caller starts it
  EXPECT_TRUE(s.filling());
  EXPECT_FALSE(s.wait_fill([&](bool ok) { ran.push_back(ok ? "b:ok" : "b:fail"); }));  // under way
  EXPECT_FALSE(s.begin_fill());
  EXPECT_FALSE(s.idle());
  auto waiters = s.end_fill();
  EXPECT_FALSE(s.filling());
  EXPECT_TRUE(s.idle());
  EXPECT_TRUE(ran.empty());  // the caller runs them, with its lock released
  ASSERT_EQ(waiters.size(), 2u);
  for (auto& w : waiters) w(true);
  EXPECT_EQ(ran, (std::vector<std::string>{"a:ok", "b:ok"}));
  EXPECT_TRUE(s.end_fill().empty());  // each waiter once
  EXPECT_TRUE(s.begin_fill());        // a resync's fill
  EXPECT_FALSE(s.begin_fill());
}

}  // namespace
}  // namespace rtsync::core
