// The exact place behind each PubNub subscribe cursor this node answered with.
//
// A PubNub long poll resumes from one timetoken for all its channels, but timetokens only grow within a
// stream of one channel (service/pubnub_views.hpp, Resume): a durable publication is stamped in the
// store's transaction and appended after the commit, while an in-memory one, a signal or a relay to a
// wildcard is appended at once. A poll answered between the two with the later one's cursor would, from
// that cursor alone, skip the earlier one when it lands before the next poll. So each answer's cursor is
// remembered, for its uuid, with where every stream of every channel was left (the marks); the next poll
// of that uuid with it resumes from the marks, exactly, and only an unknown cursor (another node's, one
// from before a restart, one forgotten) resumes by timetoken.
//
// An answer's cursor is the newest timetoken it covers, unless this uuid already holds that cursor with
// other marks (two of its clients, answered differently): then the next free timetoken after it.
// Remembered: the last kEntries answers; once newer ones come, none older than kKeep. A client polls again
// within milliseconds of an answer, or after an error within seconds; both are far inside either bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/pubnub_views.hpp"

namespace rtsync::service {

class PubnubCursors {
 public:
  // Each channel's name and where its streams were left.
  using Marks = std::vector<std::pair<std::string, Resume>>;

  static constexpr std::size_t kEntries = 100'000;
  static constexpr std::chrono::minutes kKeep{5};

  // The cursor of an answer to `uuid` that covers timetoken `covered`, remembered with `marks`.
  std::uint64_t issue(std::uint64_t covered, std::string uuid, Marks marks);
  // The marks behind `cursor` if this node issued it to `uuid` and still remembers it; else null.
  std::shared_ptr<const Marks> find(std::uint64_t cursor, std::string_view uuid) const;

 private:
  using Key = std::pair<std::string, std::uint64_t>;  // uuid, cursor

  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<const Marks>> entries_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, Key>> order_;  // oldest first
};

}  // namespace rtsync::service
