// The data directory lock: flock on DATA/lock, held until exit. See data_dir.hpp.
#include "server/data_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace rtsync::server {

namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
  throw std::runtime_error(what + " " + path.string() + ": " + std::strerror(err));
}

// The pid the holder wrote, for the message; empty when it has not written it yet.
std::string holder_pid(int fd) {
  char buf[32];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  std::string pid(buf, static_cast<std::size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : std::string{};
}

}  // namespace

DataDirLock::DataDirLock(const std::filesystem::path& data_dir) {
  // "data/" names the same directory as "data"; its parent is what must exist first.
  const auto dir = data_dir.has_filename() ? data_dir : data_dir.parent_path();
  std::error_code ec;
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (ec) fail("cannot create directory", dir.parent_path(), ec.value());
  // The secret and the database are in it: nobody else needs to list it (an existing one is left as the
  // operator made it).
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot create data dir", dir, errno);

  const auto path = dir / "lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot open", path, errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = err == EWOULDBLOCK ? holder_pid(fd_) : std::string{};
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) fail("cannot lock", path, err);
    throw std::runtime_error("data dir " + dir.string() + " is in use by another rtsync server (" +
                             (pid.empty() ? std::string{} : "pid " + pid + ", ") + "holding " + path.string() +
                             "): stop it, or give this one its own --data");
  }
  // Best effort: the pid only makes the message above more useful; the lock is what counts.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

DataDirLock::~DataDirLock() {
  if (fd_ < 0) return;
  // The file stays (unlinking it would let a newcomer lock a fresh inode while a late opener locks the old
  // one); only the stale pid goes.
  [[maybe_unused]] const int r = ::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace rtsync::server
