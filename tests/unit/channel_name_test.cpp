// Unit tests of channel names (core/channel_name.hpp): the characters and length allowed, namespaces.
#include "core/channel_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace rtsync::core {
namespace {

TEST(ChannelName, Valid) {
  EXPECT_TRUE(valid_channel_name("a"));
  EXPECT_TRUE(valid_channel_name("chat"));
  EXPECT_TRUE(valid_channel_name("ns:room-1"));
  EXPECT_TRUE(valid_channel_name("AZaz09_.:@-"));
  EXPECT_TRUE(valid_channel_name("user@example.com"));
  EXPECT_TRUE(valid_channel_name("coll:todos"));
  EXPECT_TRUE(valid_channel_name(":"));
}

TEST(ChannelName, Invalid) {
  EXPECT_FALSE(valid_channel_name(""));
  EXPECT_FALSE(valid_channel_name("has space"));
  EXPECT_FALSE(valid_channel_name("a/b"));
  EXPECT_FALSE(valid_channel_name("a#b"));
  EXPECT_FALSE(valid_channel_name("a*"));
  EXPECT_FALSE(valid_channel_name("caf\xc3\xa9"));
  EXPECT_FALSE(valid_channel_name("tab\t"));
  EXPECT_FALSE(valid_channel_name("new\nline"));
  EXPECT_FALSE(valid_channel_name(std::string_view("nul\0x", 5)));
  EXPECT_FALSE(valid_channel_name("quote\""));
  for (char c : std::string("!$%&'()+,;<=>?[\\]^`{|}~")) {
    EXPECT_FALSE(valid_channel_name(std::string("a") + c)) << c;
  }
}

TEST(ChannelName, LengthLimit) {
  EXPECT_EQ(max_channel_name, 128u);
  EXPECT_TRUE(valid_channel_name(std::string(128, 'x')));
  EXPECT_FALSE(valid_channel_name(std::string(129, 'x')));
  EXPECT_TRUE(valid_channel_name("ns:" + std::string(125, 'y')));
  EXPECT_FALSE(valid_channel_name("ns:" + std::string(126, 'y')));
}

TEST(ChannelName, NamespaceOf) {
  EXPECT_EQ(namespace_of("plain"), "");
  EXPECT_EQ(namespace_of("coll:todos"), "coll");
  EXPECT_EQ(namespace_of("tally:votes:x"), "tally");
  EXPECT_EQ(namespace_of(":x"), "");
  EXPECT_EQ(namespace_of("ns:"), "ns");
  EXPECT_EQ(namespace_of(""), "");
}

}  // namespace
}  // namespace rtsync::core
