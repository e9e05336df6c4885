// The data directory of one server: created private (0700) when missing, and locked for the process's
// lifetime so that two servers never share it (docs/security.md, "The data directory").
#pragma once

#include <filesystem>

namespace rtsync::server {

// An exclusive flock(2) on DATA/lock, which holds the owner's pid. The kernel drops it when the process
// ends, however it ends, so a crash never leaves a stale lock behind.
class DataDirLock {
 public:
  // Creates the directory (mode 0700) if missing and takes the lock without waiting. Throws
  // std::runtime_error naming the directory (and the holder's pid) when another process holds it.
  explicit DataDirLock(const std::filesystem::path& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace rtsync::server
