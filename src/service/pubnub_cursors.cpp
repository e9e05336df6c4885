// Remembered PubNub subscribe cursors. See pubnub_cursors.hpp.
#include "service/pubnub_cursors.hpp"

namespace rtsync::service {

std::uint64_t PubnubCursors::issue(std::uint64_t covered, std::string uuid, Marks marks) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  Key key{std::move(uuid), covered};
  for (;; ++key.second) {
    auto it = entries_.find(key);
    if (it == entries_.end()) break;
    if (*it->second == marks) return key.second;
  }
  const std::uint64_t cursor = key.second;
  entries_.emplace(key, std::make_shared<const Marks>(std::move(marks)));
  order_.emplace_back(now, std::move(key));
  while (order_.size() > kEntries || now - order_.front().first > kKeep) {
    entries_.erase(order_.front().second);
    order_.pop_front();
  }
  return cursor;
}

std::shared_ptr<const PubnubCursors::Marks> PubnubCursors::find(std::uint64_t cursor, std::string_view uuid) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(Key{std::string(uuid), cursor});
  return it == entries_.end() ? nullptr : it->second;
}

}  // namespace rtsync::service
