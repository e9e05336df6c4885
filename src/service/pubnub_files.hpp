// PubNub files (docs/pubnub.md, section 7.6): what a channel's clients uploaded, kept under the data dir
// (`<data>/files/<sha256 of the channel>/<id>` with its description in `<id>.json`), listed, read and
// deleted. An upload is reserved first (reserve(): an id and a deadline), which the upload then names;
// the id is 128 random bits, so the upload URL is its own permission.
//
// The index (every file's description) is in memory, read at start from the directory, so listing and
// checking a file never touch the disk on the caller's thread; the bytes are written (to a temporary name,
// synced, then renamed: a file is whole or absent after a crash), read and removed on a thread of its own,
// and the results come back through the caller's Post. Files are this node's: nodes of a cluster do not
// share them (docs/pubnub.md says how to deploy that).
//
// Thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "service/channels.hpp"

namespace rtsync::service {

struct FileInfo {
  std::string id;    // 32 hex digits
  std::string name;  // as uploaded
  std::uint64_t size = 0;
  std::int64_t created = 0;  // ms since the Unix epoch
  std::string mime;          // the upload's Content-Type, or empty
};

// A file name PubNub's SDKs can put in a path: 1-255 bytes of UTF-8, no control characters, no '/' or
// '\\', not "." or "..".
bool valid_file_name(std::string_view name);

class PubnubFiles {
 public:
  // How long a reserved upload waits for its bytes.
  static constexpr std::chrono::minutes kUploadWindow{1};
  // Files listed per page at most (PubNub's limit).
  static constexpr std::size_t kMaxList = 100;

  // Reads the index from `root` (created if missing); files cut short by a crash are removed.
  PubnubFiles(std::filesystem::path root, std::size_t max_size);
  ~PubnubFiles();

  std::size_t max_size() const { return max_size_; }

  // A new upload of `name` to `channel`: its id, valid until now + kUploadWindow.
  std::string reserve(const std::string& channel, const std::string& name);
  // The bytes of the upload `id` to `channel`: kept, then `done(true)` through `post`; false when no such
  // upload is reserved (unknown, expired, already done) or the disk failed. The reservation is spent either way.
  void store(const std::string& channel, const std::string& id, std::string bytes, std::string mime, const Post& post,
             std::function<void(bool)> done);

  // A file of the channel, by id and name.
  std::optional<FileInfo> find(const std::string& channel, std::string_view id, std::string_view name) const;
  // The channel's files, oldest first, at most `limit`, after the one `next` names (a previous page's
  // next_page()); the page, and whether more follow.
  std::vector<FileInfo> list(const std::string& channel, std::size_t limit, std::string_view next, bool& more) const;
  // The `next` that continues a listing after `last`.
  static std::string next_page(const FileInfo& last);

  // The bytes of a file of the channel, through `post`; nullopt when gone or unreadable.
  void read(const std::string& channel, const FileInfo& file, const Post& post,
            std::function<void(std::optional<std::string>)> done);
  // Removes a file of the channel (from the index now, from the disk on the file thread); false: none.
  bool remove(const std::string& channel, std::string_view id, std::string_view name);

 private:
  struct Pending {
    std::string channel;
    std::string name;
    std::chrono::steady_clock::time_point deadline;
  };

  std::filesystem::path dir_of(const std::string& channel) const;
  void load();

  const std::filesystem::path root_;
  const std::size_t max_size_;
  mutable std::mutex mu_;
  // By channel, ordered by (created, id): the listing order.
  std::map<std::string, std::map<std::pair<std::int64_t, std::string>, FileInfo>> files_;
  std::map<std::string, Pending> pending_;  // by id
  boost::asio::thread_pool disk_{1};
};

}  // namespace rtsync::service
