// The data dir lock (server/data_dir.hpp): one holder at a time, named with its pid when refused, free
// again once the holder is gone; a missing data dir is created private.
#include "server/data_dir.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/random.hpp"

namespace rtsync::server {
namespace {

namespace fs = std::filesystem;

class DataDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::temp_directory_path() / ("rtsync_lock_" + common::random_hex(6)); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DataDirLockTest, OneHolderAtATime) {
  const fs::path data = dir_ / "nested" / "data";
  auto first = std::make_unique<DataDirLock>(data);
  struct stat st {};
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((data / "lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // flock locks belong to open files, so a second open in the same process is refused like another process.
  try {
    DataDirLock second(data);
    ADD_FAILURE() << "the data dir was locked twice";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("data dir " + data.string() + " is in use"), std::string::npos) << what;
    EXPECT_NE(what.find("pid " + std::to_string(::getpid())), std::string::npos) << what;
  }
  first.reset();
  EXPECT_NO_THROW(DataDirLock again(data));
}

TEST_F(DataDirLockTest, TrailingSlashNamesTheSameDir) {
  const DataDirLock lock(dir_.string() + "/");
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_THROW(DataDirLock again(dir_), std::runtime_error);
}

TEST_F(DataDirLockTest, AnExistingDirKeepsItsMode) {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  const DataDirLock lock(dir_);
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
}

}  // namespace
}  // namespace rtsync::server
