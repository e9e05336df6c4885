#include "core/idempotency.hpp"

namespace rtsync::core {

namespace {
std::string compose(const std::string& user, const std::string& key) {
  std::string k = user;
  k.push_back('\0');
  k += key;
  return k;
}
}  // namespace

std::optional<std::uint64_t> IdempotencyCache::find(const std::string& user, const std::string& key,
                                                     Clock::time_point now) {
  expire(now);
  auto it = entries_.find(compose(user, key));
  if (it == entries_.end()) return std::nullopt;
  return it->second.offset;
}

void IdempotencyCache::remember(const std::string& user, const std::string& key, std::uint64_t offset,
                                Clock::time_point now) {
  auto k = compose(user, key);
  entries_[k] = Entry{offset, now};
  order_.emplace_back(now, std::move(k));
}

void IdempotencyCache::expire(Clock::time_point now) {
  while (!order_.empty() && now - order_.front().first >= ttl) {
    auto it = entries_.find(order_.front().second);
    if (it != entries_.end() && it->second.at == order_.front().first) entries_.erase(it);
    order_.pop_front();
  }
}

}  // namespace rtsync::core
