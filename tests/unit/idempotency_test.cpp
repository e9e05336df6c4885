// Unit tests of the in-memory idempotency cache (core/idempotency.cpp): keys per user, 24-hour expiry.
#include "core/idempotency.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>

namespace rtsync::core {
namespace {

using IdemClock = IdempotencyCache::Clock;
const IdemClock::time_point kT0 = IdemClock::time_point(std::chrono::hours(1000));

TEST(IdempotencyCacheTest, FindAfterRemember) {
  IdempotencyCache c;
  EXPECT_FALSE(c.find("alice", "k1", kT0).has_value());
  c.remember("alice", "k1", 42, kT0);
  auto r = c.find("alice", "k1", kT0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 42u);
  EXPECT_FALSE(c.find("alice", "k2", kT0).has_value());
  c.remember("alice", "k2", 43, kT0);
  EXPECT_EQ(c.find("alice", "k1", kT0), std::optional<std::uint64_t>(42));
  EXPECT_EQ(c.find("alice", "k2", kT0), std::optional<std::uint64_t>(43));
}

TEST(IdempotencyCacheTest, KeysArePerUser) {
  IdempotencyCache c;
  c.remember("alice", "k", 1, kT0);
  EXPECT_FALSE(c.find("bob", "k", kT0).has_value());
  c.remember("bob", "k", 2, kT0);
  EXPECT_EQ(c.find("alice", "k", kT0), std::optional<std::uint64_t>(1));
  EXPECT_EQ(c.find("bob", "k", kT0), std::optional<std::uint64_t>(2));
  // user + key concatenations that coincide stay distinct.
  c.remember("ab", "c", 3, kT0);
  EXPECT_FALSE(c.find("a", "bc", kT0).has_value());
  EXPECT_EQ(c.find("ab", "c", kT0), std::optional<std::uint64_t>(3));
}

TEST(IdempotencyCacheTest, ExpiresAfter24Hours) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("alice", "k", 7, kT0);
  EXPECT_EQ(c.find("alice", "k", kT0 + 23h), std::optional<std::uint64_t>(7));
  EXPECT_EQ(c.find("alice", "k", kT0 + 24h - 1s), std::optional<std::uint64_t>(7));
  EXPECT_FALSE(c.find("alice", "k", kT0 + 24h + 1s).has_value());
  // Gone for good, even when asked with an earlier time again.
  EXPECT_FALSE(c.find("alice", "k", kT0 + 1h).has_value());
}

TEST(IdempotencyCacheTest, EntriesExpireIndependently) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("u", "old", 1, kT0);
  c.remember("u", "new", 2, kT0 + 12h);
  EXPECT_FALSE(c.find("u", "old", kT0 + 25h).has_value());
  EXPECT_EQ(c.find("u", "new", kT0 + 25h), std::optional<std::uint64_t>(2));
  EXPECT_EQ(c.find("u", "new", kT0 + 36h - 1s), std::optional<std::uint64_t>(2));
  EXPECT_FALSE(c.find("u", "new", kT0 + 36h + 1s).has_value());
}

TEST(IdempotencyCacheTest, RememberAfterExpiryWorks) {
  using namespace std::chrono_literals;
  IdempotencyCache c;
  c.remember("u", "k", 1, kT0);
  EXPECT_FALSE(c.find("u", "k", kT0 + 48h).has_value());
  c.remember("u", "k", 9, kT0 + 48h);
  EXPECT_EQ(c.find("u", "k", kT0 + 50h), std::optional<std::uint64_t>(9));
}

}  // namespace
}  // namespace rtsync::core
