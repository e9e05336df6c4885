// The Store seam: where durable state lives. SQLite (store_sqlite.cpp) is the default; PostgreSQL comes
// with the scale-out work. I/O threads never call into a store synchronously: every operation is queued
// and completes through a callback on the store's own thread, so the disk never stalls a socket.
//
// Ordering contract (the hub's gap-free guarantees rest on it):
// - Offsets of a channel are assigned in the order append() was called, starting at 1, without gaps.
// - Callbacks run one at a time, on the store's thread, in the order the work was queued within a
//   channel; an append's callback runs only after its transaction committed (or failed).
// - load() reflects every append whose callback already ran and none whose callback runs later.
// Concurrent appends share a transaction and its fsync (group commit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/hub.hpp"
#include "core/publication.hpp"

namespace rtsync::store {

struct AppendRequest {
  std::string channel;
  std::string data;              // compact JSON text
  std::string from;              // publisher's user id
  std::int64_t ts = 0;           // milliseconds since the Unix epoch
  std::size_t history_size = 0;  // keep at most this many publications of the channel
  std::string key;               // idempotency key; empty: none (see AppendResult::replayed)
};

struct AppendResult {
  bool ok = false;
  std::string error;                 // when !ok: what failed (logged; clients see "unavailable")
  std::string epoch;                 // of the channel
  core::PublicationPtr pub;          // the committed publication (with its offset)
  bool replayed = false;             // the same (from, key) was appended within 24 h: `pub` is the first one
};

struct StoreStats {
  std::uint64_t commits = 0;
  std::uint64_t appends = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Appends one publication to a durable channel (created with a fresh epoch on first use) and trims the
  // channel to `history_size`. A (from, key) pair seen within the last 24 hours is not appended again:
  // the result carries the first publication and `replayed`.
  virtual void append(AppendRequest req, std::function<void(AppendResult)> done) = 0;

  // Reads a durable channel's epoch, last offset and kept history (at most `history_size`, ascending).
  // A channel never written gets its epoch now, so the epoch is stable from the first subscribe.
  virtual void load(std::string channel, std::size_t history_size,
                    std::function<void(core::ChannelSnapshot)> done) = 0;

  // Runs queued work to completion and stops the store's thread. Later calls fail their callbacks.
  virtual void close() = 0;

  virtual StoreStats stats() const = 0;
};

struct SqliteOptions {
  std::filesystem::path file;          // the database file; created with its tables if missing
  std::string synchronous = "full";    // "full" or "normal" (WAL either way)
};

// Opens (creating if needed) the database and starts the writer thread. Throws std::runtime_error.
std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts);

}  // namespace rtsync::store
