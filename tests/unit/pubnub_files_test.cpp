// Unit tests of PubNub files on disk (service/pubnub_files.cpp): a reserved upload is kept once, listed
// oldest first in pages, read back, removed; the index is read again at start, and what a crash cut short
// is removed.
#include "service/pubnub_files.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "common/random.hpp"

namespace rtsync::service {
namespace {

namespace fs = std::filesystem;

// Runs what the files post at once (on their disk thread): the tests wait on futures.
const Post kInline = [](std::function<void()> f) { f(); };

struct FilesTest : ::testing::Test {
  fs::path root = fs::temp_directory_path() / ("rtsync-files-test-" + common::random_hex(6));
  ~FilesTest() override { fs::remove_all(root); }

  static bool store(PubnubFiles& f, const std::string& ch, const std::string& id, std::string bytes) {
    std::promise<bool> done;
    f.store(ch, id, std::move(bytes), "text/plain", kInline, [&](bool ok) { done.set_value(ok); });
    return done.get_future().get();
  }
  static std::optional<std::string> read(PubnubFiles& f, const std::string& ch, const FileInfo& info) {
    std::promise<std::optional<std::string>> done;
    f.read(ch, info, kInline, [&](std::optional<std::string> b) { done.set_value(std::move(b)); });
    return done.get_future().get();
  }
};

TEST(PubnubFileNames, WhatAPathCanHold) {
  EXPECT_TRUE(valid_file_name("report v1.pdf"));
  EXPECT_TRUE(valid_file_name("été.txt"));
  EXPECT_FALSE(valid_file_name(""));
  EXPECT_FALSE(valid_file_name(".."));
  EXPECT_FALSE(valid_file_name("a/b"));
  EXPECT_FALSE(valid_file_name("a\\b"));
  EXPECT_FALSE(valid_file_name("tab\t"));
  EXPECT_FALSE(valid_file_name(std::string(256, 'x')));
  EXPECT_FALSE(valid_file_name("\xff"));
}

TEST_F(FilesTest, AReservedUploadIsKeptOnceListedReadAndRemoved) {
  PubnubFiles f(root, 1000);
  const auto a = f.reserve("ch", "a.txt");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_FALSE(store(f, "other", a, "x")) << "an upload is for its channel";
  EXPECT_FALSE(store(f, "ch", a, "x")) << "and spent by any attempt";
  const auto b = f.reserve("ch", "b.txt");
  ASSERT_TRUE(store(f, "ch", b, "bytes of b"));
  EXPECT_FALSE(store(f, "ch", b, "again"));
  const auto c = f.reserve("ch", "c.txt");
  ASSERT_TRUE(store(f, "ch", c, "c"));
  EXPECT_FALSE(store(f, "ch", "0123456789abcdef0123456789abcdef", "x")) << "never reserved";

  bool more = false;
  auto page = f.list("ch", 1, "", more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_TRUE(more);
  EXPECT_EQ(page[0].name, "b.txt");
  EXPECT_EQ(page[0].size, 10u);
  EXPECT_EQ(page[0].mime, "text/plain");
  page = f.list("ch", 10, PubnubFiles::next_page(page[0]), more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_FALSE(more);
  EXPECT_EQ(page[0].id, c);

  auto info = f.find("ch", b, "b.txt");
  ASSERT_TRUE(info);
  EXPECT_FALSE(f.find("ch", b, "other-name.txt"));
  EXPECT_EQ(read(f, "ch", *info), "bytes of b");
  EXPECT_TRUE(f.remove("ch", b, "b.txt"));
  EXPECT_FALSE(f.remove("ch", b, "b.txt"));
  EXPECT_FALSE(f.find("ch", b, "b.txt"));
}

TEST_F(FilesTest, TheIndexIsReadAtStartAndWhatACrashCutShortIsRemoved) {
  std::string id;
  {
    PubnubFiles f(root, 1000);
    id = f.reserve("room:1", "kept.bin");
    ASSERT_TRUE(store(f, "room:1", id, std::string("\0\1\2", 3)));
    const auto gone = f.reserve("room:1", "gone.bin");
    ASSERT_TRUE(store(f, "room:1", gone, "x"));
    ASSERT_TRUE(f.remove("room:1", gone, "gone.bin"));
  }
  // A crash's leftovers: bytes with no description, a half-written file.
  const fs::path dir = fs::directory_iterator(root)->path();
  std::ofstream(dir / "ffffffffffffffffffffffffffffffff") << "orphan";
  std::ofstream(dir / "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.part") << "half";
  PubnubFiles f(root, 1000);
  bool more = false;
  auto all = f.list("room:1", 10, "", more);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, id);
  EXPECT_EQ(read(f, "room:1", all[0]), std::string("\0\1\2", 3));
  EXPECT_FALSE(fs::exists(dir / "ffffffffffffffffffffffffffffffff"));
  EXPECT_FALSE(fs::exists(dir / "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.part"));
}

}  // namespace
}  // namespace rtsync::service
