// A publication as kept in history and sent to subscribers (PROTOCOL §4).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rtsync::core {

struct Publication {
  std::uint64_t offset = 0;  // 1, 2, 3, ... per channel within one epoch
  std::string data;          // compact JSON text, validated when it was published
  std::string from;          // publisher's user id
  std::int64_t ts = 0;       // publish time, milliseconds since the Unix epoch
  std::string audience{};    // empty: every subscriber; else only this user (read = "owner" change feeds)
};

// Publications are immutable once made and shared between history, replies and the store.
using PublicationPtr = std::shared_ptr<const Publication>;

// A position in a channel's stream: the client's "since" (Centrifuge's StreamPosition).
struct StreamPosition {
  std::uint64_t offset = 0;
  std::string epoch;
};

}  // namespace rtsync::core
