// The HTTP rate limit. See rate_limit.hpp.
#include "server/rate_limit.hpp"

#include <algorithm>

namespace rtsync::server {

RateTable::RateTable(double rate, double burst, std::size_t capacity) : rate_(rate), burst_(burst), capacity_(capacity) {
  index_.reserve(std::min<std::size_t>(capacity, 1024));
}

void RateTable::drop_last() {
  index_.erase(lru_.back().key);
  lru_.pop_back();
}

long RateTable::take(std::string_view key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  // Refilled buckets at the cold end are dropped a few at a time, so that idle clients leave the table
  // with the traffic of others and no request pays for a whole sweep.
  for (int i = 0; i < 2 && !lru_.empty() && lru_.back().bucket.full_at(rate_, burst_, now); ++i) drop_last();
  auto it = index_.find(key);
  if (it == index_.end()) {
    if (lru_.size() >= capacity_) drop_last();
    lru_.push_front(Entry{std::string(key), common::TokenBucket::full(burst_, now)});
    index_.emplace(lru_.front().key, lru_.begin());
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  auto& bucket = lru_.front().bucket;
  if (bucket.take(rate_, burst_, now)) return 0;
  return bucket.seconds_until_token(rate_);
}

std::size_t RateTable::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

HttpRateLimit::HttpRateLimit(const config::Config& cfg, std::size_t capacity) {
  const auto& l = cfg.limits;
  if (l.http_rate > 0)
    addresses_.emplace(static_cast<double>(l.http_rate), static_cast<double>(l.http_burst), capacity);
  if (l.http_user_rate > 0)
    users_.emplace(static_cast<double>(l.http_user_rate), static_cast<double>(l.http_user_burst), capacity);
  for (const auto& p : cfg.server.trusted_proxies)
    if (auto net = common::parse_network(p)) trusted_.push_back(*net);  // validated with the config
}

common::Ip HttpRateLimit::client_of(const common::Ip& peer, const Request& req) const {
  auto trusted = [&](const common::Ip& ip) {
    return std::any_of(trusted_.begin(), trusted_.end(), [&](const common::IpNetwork& n) { return common::contains(n, ip); });
  };
  if (!trusted(peer)) return peer;
  // Each proxy appends the address it received from, so the list is read from its end; the first
  // address that is not a trusted proxy is the client. Whatever precedes it is the client's own claim.
  std::vector<std::string_view> hops;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
    std::string_view list = it->value();
    for (;;) {
      auto comma = list.find(',');
      auto hop = list.substr(0, comma);
      while (!hop.empty() && (hop.front() == ' ' || hop.front() == '\t')) hop.remove_prefix(1);
      while (!hop.empty() && (hop.back() == ' ' || hop.back() == '\t')) hop.remove_suffix(1);
      hops.push_back(hop);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  common::Ip client = peer;
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    auto ip = common::parse_ip(*hop);
    if (!ip) break;  // not an address a proxy wrote: the last good one stands
    client = *ip;
    if (!trusted(client)) break;
  }
  return client;
}

long HttpRateLimit::count(long wait) {
  if (wait) refused_.fetch_add(1, std::memory_order_relaxed);
  return wait;
}

long HttpRateLimit::by_address(const common::Ip& client, Clock::time_point now) {
  if (!addresses_) return 0;
  common::Ip key = client;
  // An IPv6 subscriber gets a /64 (or more) to itself: counted as one client, else it has 2^64 buckets.
  if (!common::is_v4(key)) std::fill(key.begin() + 8, key.end(), std::uint8_t{0});
  return count(addresses_->take(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), now));
}

long HttpRateLimit::by_user(std::string_view user, Clock::time_point now) {
  if (!users_) return 0;
  return count(users_->take(user, now));
}

std::size_t HttpRateLimit::clients() const {
  return (addresses_ ? addresses_->size() : 0) + (users_ ? users_->size() : 0);
}

}  // namespace rtsync::server
