// Unit tests of multipart/form-data parsing (protocol/multipart.cpp), as PubNub SDKs upload a file.
#include "protocol/multipart.hpp"

#include <gtest/gtest.h>

#include <string>

namespace rtsync::protocol::multipart {
namespace {

TEST(Multipart, TheBoundaryOfAFormDataType) {
  EXPECT_EQ(boundary_of("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(boundary_of("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
  EXPECT_EQ(boundary_of("multipart/form-data; charset=x; boundary=--z"), "--z");
  EXPECT_FALSE(boundary_of("multipart/mixed; boundary=abc"));
  EXPECT_FALSE(boundary_of("multipart/form-data"));
  EXPECT_FALSE(boundary_of("multipart/form-data; boundary="));
  EXPECT_FALSE(boundary_of("multipart/form-data; boundary=" + std::string(71, 'x')));
}

TEST(Multipart, PartsWithTheirNamesTypesAndBytes) {
  const std::string file("a\r\n--notit\0b", 12);
  const std::string body = "--XY\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n123\r\n"
                           "--XY\r\ncontent-disposition: form-data; name=\"file\"; filename=\"r \\\"1\\\".bin\"\r\n"
                           "Content-Type: text/plain\r\n\r\n" + file + "\r\n--XY--\r\n";
  auto parts = parse(body, "XY");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "id");
  EXPECT_EQ((*parts)[0].body, "123");
  EXPECT_EQ((*parts)[0].filename, "");
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_EQ((*parts)[1].filename, "r \"1\".bin");
  EXPECT_EQ((*parts)[1].content_type, "text/plain");
  EXPECT_EQ((*parts)[1].body, file) << "binary-safe, a CRLF and a dash run inside are data";
}

TEST(Multipart, MalformedBodiesAreRefused) {
  const char* bad[] = {
      "",                                                                   // nothing
      "--XY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",   // no closing delimiter
      "--XY\r\nContent-Disposition: form-data; name=\"a\"\r\nx\r\n--XY--",  // no blank line
      "--XY\r\nContent-Type: text/plain\r\n\r\nx\r\n--XY--",                // no Content-Disposition
      "--XY\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XY--",  // not form-data
      "--XY\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XY--",         // no name
      "--XYbad\r\n",                                                        // no CRLF after the delimiter
      "preamble--XY--",                                                     // not starting with it
  };
  for (const char* b : bad) EXPECT_FALSE(parse(b, "XY")) << b;
  auto empty = parse("--XY--\r\n", "XY");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace rtsync::protocol::multipart
