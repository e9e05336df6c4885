// common::parse_endpoint: the backend URLs the config accepts (http:// only) and what they name.
#include "common/endpoint.hpp"

#include <gtest/gtest.h>

namespace rtsync::common {
namespace {

TEST(Endpoint, ParsesHttpUrlsOnly) {
  auto e = parse_endpoint("http://127.0.0.1:9000/hooks/connect?app=pcm");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, "9000");
  EXPECT_EQ(e->target, "/hooks/connect?app=pcm");
  auto plain = parse_endpoint("http://backend.internal");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->port, "80");
  EXPECT_EQ(plain->target, "/");
  EXPECT_EQ(parse_endpoint("http://[::1]:81/x")->host, "::1");
  for (auto bad : {"https://a/x", "ftp://a/", "http://u:p@a/", "http://a/#f", "a/b", "http:///x", ""})
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
}

}  // namespace
}  // namespace rtsync::common
