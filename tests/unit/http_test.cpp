// The request-head rules the parser leaves to rtsync (RFC 9112, RFC 6455 §4.2.1): Host, Transfer-Encoding,
// obs-fold and the WebSocket key. Requests are parsed from bytes with Beast, as HttpSession does.
#include "server/http.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>

#include <string>

namespace rtsync::server {
namespace {

Request parse(std::string_view head) {
  http::request_parser<http::string_body> p;
  boost::system::error_code ec;
  p.put(boost::asio::buffer(head.data(), head.size()), ec);
  EXPECT_FALSE(ec) << ec.message() << " for " << head;
  EXPECT_TRUE(p.is_header_done());
  return p.release();
}

std::optional<http::status> framing(std::string_view head) {
  auto e = check_framing(parse(head));
  if (!e) return std::nullopt;
  return e->status;
}

TEST(HttpFraming, HostMustBePresentOnceOnHttp11) {
  EXPECT_EQ(framing("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"), std::nullopt);
  EXPECT_EQ(framing("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), std::nullopt);
  EXPECT_EQ(framing("GET / HTTP/1.1\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), http::status::bad_request);
  // HTTP/1.0 predates Host: it may be left out, not doubled.
  EXPECT_EQ(framing("GET / HTTP/1.0\r\n\r\n"), std::nullopt);
  EXPECT_EQ(framing("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), http::status::bad_request);
}

TEST(HttpFraming, OnlyChunkedAloneIsAcceptedAsTransferEncoding) {
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), std::nullopt);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n"), std::nullopt);
  // RFC 9112 §6.3: the final coding is not chunked, so the length of the body is unknown.
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"), http::status::bad_request);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\n"),
            http::status::bad_request);
  // Chunked last but after another coding: well framed, not supported.
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), http::status::not_implemented);
  EXPECT_EQ(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
            http::status::not_implemented);
  EXPECT_EQ(framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), http::status::bad_request);
}

TEST(HttpFraming, ObsFoldIsFoundInTheRawHead) {
  EXPECT_FALSE(has_obs_fold("GET / HTTP/1.1\r\nHost: a\r\nX: b c\r\n"));
  EXPECT_TRUE(has_obs_fold("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n"));
  EXPECT_TRUE(has_obs_fold("GET / HTTP/1.1\r\nX: b\r\n\tc\r\nHost: a\r\n"));
  EXPECT_FALSE(has_obs_fold("GET / HTTP/1.1\r\n"));
}

TEST(HttpFraming, WebSocketKeyIsSixteenBytesOfCanonicalBase64) {
  EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));  // RFC 6455's example
  EXPECT_TRUE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(valid_websocket_key("/+/+/+/+/+/+/+/+/+/+/w=="));
  EXPECT_FALSE(valid_websocket_key(""));
  EXPECT_FALSE(valid_websocket_key("x"));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));      // unpadded
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZR=="));    // non-zero padding bits
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ-="));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j-Q=="));    // base64url, not base64
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZSBhYg=="));  // 19 bytes
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ==\n"));
}

}  // namespace
}  // namespace rtsync::server
