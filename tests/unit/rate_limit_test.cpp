// The HTTP rate limit (server/rate_limit.hpp) with a clock of the test's own: buckets, Retry-After, the
// memory bound, IPv6 /64 keys, X-Forwarded-For through trusted proxies; and the IP parsing it relies on.
#include "server/rate_limit.hpp"

#include <gtest/gtest.h>

#include <string>

namespace rtsync::server {
namespace {

using namespace std::chrono_literals;

const Clock::time_point t0 = Clock::now();

common::Ip ip(std::string_view text) {
  auto v = common::parse_ip(text);
  EXPECT_TRUE(v) << text;
  return v.value_or(common::Ip{});
}

config::Config limits(std::size_t rate, std::size_t burst, std::size_t user_rate = 0, std::size_t user_burst = 1,
                      std::vector<std::string> trusted = {}) {
  config::Config c;
  c.limits.http_rate = rate;
  c.limits.http_burst = burst;
  c.limits.http_user_rate = user_rate;
  c.limits.http_user_burst = user_burst;
  c.server.trusted_proxies = std::move(trusted);
  return c;
}

TEST(RateTable, BurstThenRefusedWithRetryAfterThenRefilled) {
  RateTable t(2, 5, 100);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.take("a", t0), 0) << i;
  EXPECT_EQ(t.take("a", t0), 1);            // one token in 0.5 s: Retry-After rounds up to 1
  EXPECT_EQ(t.take("b", t0), 0) << "another client has its own bucket";
  EXPECT_EQ(t.take("a", t0 + 400ms), 1);    // 0.8 of a token
  EXPECT_EQ(t.take("a", t0 + 500ms), 0);
  EXPECT_EQ(t.take("a", t0 + 500ms), 1);
  RateTable slow(0.1, 1, 100);
  EXPECT_EQ(slow.take("a", t0), 0);
  EXPECT_EQ(slow.take("a", t0), 10) << "Retry-After is the time to the next token";
}

TEST(RateTable, IdleBucketsLeaveWithOtherTraffic) {
  RateTable t(10, 10, 1000);
  for (int i = 0; i < 100; ++i) t.take("idle-" + std::to_string(i), t0);
  EXPECT_EQ(t.size(), 100u);
  // After a second every bucket is full again, as good as absent: each request drops up to two.
  for (int i = 0; i < 60; ++i) t.take("busy", t0 + 1s + std::chrono::milliseconds(i));
  EXPECT_EQ(t.size(), 1u);
}

TEST(RateTable, ManyClientsNeverHoldMoreThanTheCapacity) {
  RateTable t(1, 1, 1000);
  for (int i = 0; i < 100'000; ++i) {
    EXPECT_EQ(t.take(std::to_string(i), t0), 0);
    ASSERT_LE(t.size(), 1000u);
  }
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.take("99999", t0), 1) << "a recent client keeps its bucket";
  EXPECT_EQ(t.take("0", t0), 0) << "the least recently used ones made room";
}

TEST(HttpRateLimit, AddressesAndUsersHaveTheirOwnBucketsAndCount) {
  HttpRateLimit l(limits(1, 2, 1, 3));
  const auto a = ip("192.0.2.1");
  EXPECT_EQ(l.by_address(a, t0), 0);
  EXPECT_EQ(l.by_address(a, t0), 0);
  EXPECT_EQ(l.by_address(a, t0), 1);
  EXPECT_EQ(l.by_address(ip("192.0.2.2"), t0), 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.by_user("alice", t0), 0);
  EXPECT_EQ(l.by_user("alice", t0), 1);
  EXPECT_EQ(l.refused(), 2u);
  EXPECT_EQ(l.clients(), 3u);
}

TEST(HttpRateLimit, RateZeroTurnsATableOff) {
  HttpRateLimit l(limits(0, 1, 0, 1));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(l.by_address(ip("192.0.2.1"), t0), 0);
    EXPECT_EQ(l.by_user("alice", t0), 0);
  }
  EXPECT_EQ(l.clients(), 0u);
}

TEST(HttpRateLimit, Ipv6CountsPerSlash64AndIpv4MappedAsIpv4) {
  HttpRateLimit l(limits(1, 1));
  EXPECT_EQ(l.by_address(ip("2001:db8:1:2::1"), t0), 0);
  EXPECT_EQ(l.by_address(ip("2001:db8:1:2:ffff::9"), t0), 1) << "the same /64";
  EXPECT_EQ(l.by_address(ip("2001:db8:1:3::1"), t0), 0) << "another /64";
  EXPECT_EQ(l.by_address(ip("198.51.100.1"), t0), 0);
  EXPECT_EQ(l.by_address(ip("::ffff:198.51.100.1"), t0), 1) << "a v4-mapped peer is that IPv4 address";
  EXPECT_EQ(l.by_address(ip("198.51.100.2"), t0), 0) << "IPv4 addresses are not grouped";
}

Request forwarded(std::vector<std::string> xff) {
  Request req{http::verb::get, "/", 11};
  for (auto& v : xff) req.insert("X-Forwarded-For", v);
  return req;
}

TEST(HttpRateLimit, ForwardedForIsReadOnlyFromTrustedProxies) {
  HttpRateLimit none(limits(1, 1));
  EXPECT_EQ(none.client_of(ip("127.0.0.1"), forwarded({"203.0.113.9"})), ip("127.0.0.1"));

  HttpRateLimit l(limits(1, 1, 0, 1, {"127.0.0.1", "10.0.0.0/8", "fd00::/8"}));
  const auto proxy = ip("127.0.0.1");
  EXPECT_EQ(l.client_of(ip("192.0.2.7"), forwarded({"203.0.113.9"})), ip("192.0.2.7")) << "not a trusted peer";
  EXPECT_EQ(l.client_of(proxy, forwarded({})), proxy);
  EXPECT_EQ(l.client_of(proxy, forwarded({"203.0.113.9"})), ip("203.0.113.9"));
  // The client's own claim comes first; each trusted proxy appended what it saw.
  EXPECT_EQ(l.client_of(proxy, forwarded({"1.1.1.1, 203.0.113.9, 10.1.2.3"})), ip("203.0.113.9"));
  EXPECT_EQ(l.client_of(proxy, forwarded({"1.1.1.1", "203.0.113.9,fd00::5"})), ip("203.0.113.9"));
  EXPECT_EQ(l.client_of(proxy, forwarded({"junk, 203.0.113.9"})), ip("203.0.113.9"));
  EXPECT_EQ(l.client_of(proxy, forwarded({"203.0.113.9, junk"})), proxy) << "a hop no proxy wrote: stop there";
  EXPECT_EQ(l.client_of(proxy, forwarded({"10.0.0.1, 10.0.0.2"})), ip("10.0.0.1")) << "only proxies: the first";
}

TEST(IpParsing, AddressesAndNetworks) {
  EXPECT_TRUE(common::is_v4(ip("0.0.0.0")));
  EXPECT_FALSE(common::is_v4(ip("::1")));
  for (auto bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "[::1]", "::1%lo", "1.2.3.4:80", "host", " 1.2.3.4"})
    EXPECT_FALSE(common::parse_ip(bad)) << bad;
  for (auto bad : {"1.2.3.4/33", "::/129", "1.2.3.4/", "1.2.3.4/x", "1.2.3.4/-1", "/8"})
    EXPECT_FALSE(common::parse_network(bad)) << bad;
  auto n = common::parse_network("10.0.0.0/8");
  ASSERT_TRUE(n);
  EXPECT_TRUE(common::contains(*n, ip("10.255.0.1")));
  EXPECT_FALSE(common::contains(*n, ip("11.0.0.1")));
  EXPECT_FALSE(common::contains(*n, ip("::a00:1"))) << "an IPv4 network holds no IPv6 address";
  auto odd = common::parse_network("192.168.0.0/23");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(common::contains(*odd, ip("192.168.1.200")));
  EXPECT_FALSE(common::contains(*odd, ip("192.168.2.1")));
  auto all = common::parse_network("::/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(common::contains(*all, ip("2001:db8::1")));
  auto one = common::parse_network("2001:db8::1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->prefix, 128u);
  EXPECT_FALSE(common::contains(*one, ip("2001:db8::2")));
}

}  // namespace
}  // namespace rtsync::server
