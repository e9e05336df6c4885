// StaticFiles over a temporary web root: what a browser sees (status, headers, body) for files, directories,
// conditional requests and every path trick that should not leave the root. Responses are inspected by
// serializing the message_generator to bytes and parsing them back, exactly as a client would.
#include "server/static_files.hpp"

#include <gtest/gtest.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/random.hpp"

namespace rtsync::server {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;

struct Parsed {
  http::response<http::string_body> res;
  std::string raw;  // the serialized bytes, to check that nothing follows a HEAD or 304 header
};

Parsed run(const StaticFiles& files, http::verb method, std::string_view target,
           std::string_view if_none_match = {}, std::string_view accept_encoding = {}) {
  Request req{method, target, 11};
  req.keep_alive(true);
  if (!if_none_match.empty()) req.set(http::field::if_none_match, if_none_match);
  if (!accept_encoding.empty()) req.set(http::field::accept_encoding, accept_encoding);
  http::message_generator gen = files.serve(req);
  Parsed out;
  beast::error_code ec;
  while (!gen.is_done()) {
    auto bufs = gen.prepare(ec);
    EXPECT_FALSE(ec) << ec.message();
    if (ec) break;
    auto n = beast::buffer_bytes(bufs);
    out.raw += beast::buffers_to_string(bufs);
    gen.consume(n);
  }
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(method == http::verb::head);  // a HEAD answer announces a length it does not send
  parser.put(boost::asio::buffer(out.raw), ec);
  if (ec == http::error::need_more) parser.put_eof(ec);  // a length-less body would read until close
  EXPECT_FALSE(ec) << ec.message() << " in " << out.raw;
  EXPECT_TRUE(parser.is_done()) << out.raw;
  out.res = parser.release();
  return out;
}

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("rtsync_static_" + common::random_hex(6));
    root_ = base_ / "www";
    write_file(root_ / "index.html", "<h1>home</h1>");
    write_file(root_ / "app.js", "console.log(1);");
    write_file(root_ / "sub" / "index.html", "<h1>sub</h1>");
    write_file(root_ / "sub" / "data.json", R"({"a":1})");
    fs::create_directories(root_ / "empty");
    write_file(base_ / "secret", "top secret");
    write_file(base_ / "outside" / "passwd", "root:x:0:0");
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path base_, root_;
};

TEST(MimeType, ByExtension) {
  EXPECT_EQ(mime_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(mime_type("/a/b/style.css"), "text/css; charset=utf-8");
  EXPECT_EQ(mime_type("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type("mod.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type("pcm/matrix.json"), "application/json; charset=utf-8");
  EXPECT_EQ(mime_type("app.js.map"), "application/json; charset=utf-8");
  EXPECT_EQ(mime_type("logo.svg"), "image/svg+xml; charset=utf-8");
  EXPECT_EQ(mime_type("a.png"), "image/png");
  EXPECT_EQ(mime_type("a.jpg"), "image/jpeg");
  EXPECT_EQ(mime_type("a.JPEG"), "image/jpeg");
  EXPECT_EQ(mime_type("a.gif"), "image/gif");
  EXPECT_EQ(mime_type("a.webp"), "image/webp");
  EXPECT_EQ(mime_type("favicon.ico"), "image/x-icon");
  EXPECT_EQ(mime_type("robots.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(mime_type("f.woff"), "font/woff");
  EXPECT_EQ(mime_type("f.woff2"), "font/woff2");
  EXPECT_EQ(mime_type("m.wasm"), "application/wasm");
  EXPECT_EQ(mime_type("archive.tar.gz"), "application/octet-stream");
  EXPECT_EQ(mime_type("Makefile"), "application/octet-stream");
  EXPECT_EQ(mime_type(".html"), "application/octet-stream");  // a dotfile, not an extension
  EXPECT_EQ(mime_type("dir.html/file"), "application/octet-stream");
}

TEST_F(StaticFilesTest, GetServesFileWithHeaders) {
  StaticFiles files(root_);
  auto [res, raw] = run(files, http::verb::get, "/app.js?v=3");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "console.log(1);");
  EXPECT_EQ(res[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(res[http::field::content_length], "15");
  EXPECT_EQ(res[http::field::cache_control], "no-cache");
  EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(res.version(), 11);
  std::string etag(res[http::field::etag]);
  ASSERT_GE(etag.size(), 5u);
  EXPECT_EQ(etag.front(), '"');
  EXPECT_EQ(etag.back(), '"');
  EXPECT_TRUE(etag.starts_with("\"f-")) << etag;  // size 15 in hex
  EXPECT_TRUE(res[http::field::last_modified].ends_with(" GMT"));
}

TEST_F(StaticFilesTest, KeepAliveAndVersionFollowRequest) {
  StaticFiles files(root_);
  Request req{http::verb::get, "/app.js", 10};
  req.keep_alive(false);
  http::message_generator gen = files.serve(req);
  EXPECT_FALSE(gen.keep_alive());
}

TEST_F(StaticFilesTest, HeadHasHeadersButNoBody) {
  StaticFiles files(root_);
  auto get = run(files, http::verb::get, "/sub/data.json");
  auto head = run(files, http::verb::head, "/sub/data.json");
  EXPECT_EQ(head.res.result(), http::status::ok);
  EXPECT_EQ(head.res[http::field::content_length], "7");
  EXPECT_EQ(head.res[http::field::content_type], "application/json; charset=utf-8");
  EXPECT_EQ(head.res[http::field::etag], get.res[http::field::etag]);
  EXPECT_TRUE(head.raw.ends_with("\r\n\r\n")) << head.raw;
  EXPECT_TRUE(head.res.body().empty());
}

TEST_F(StaticFilesTest, ConditionalGet) {
  StaticFiles files(root_);
  std::string etag(run(files, http::verb::get, "/app.js").res[http::field::etag]);

  auto same = run(files, http::verb::get, "/app.js", etag);
  EXPECT_EQ(same.res.result(), http::status::not_modified);
  EXPECT_EQ(same.res[http::field::etag], etag);
  EXPECT_TRUE(same.raw.ends_with("\r\n\r\n"));
  EXPECT_TRUE(same.res.body().empty());

  EXPECT_EQ(run(files, http::verb::get, "/app.js", "\"nope\", W/" + etag).res.result(), http::status::not_modified);
  EXPECT_EQ(run(files, http::verb::get, "/app.js", "*").res.result(), http::status::not_modified);
  EXPECT_EQ(run(files, http::verb::head, "/app.js", etag).res.result(), http::status::not_modified);

  auto other = run(files, http::verb::get, "/app.js", "\"0-0\"");
  EXPECT_EQ(other.res.result(), http::status::ok);
  EXPECT_EQ(other.res.body(), "console.log(1);");

  // A changed file gets a new ETag, so the old one no longer matches.
  write_file(root_ / "app.js", "console.log(22);");
  auto changed = run(files, http::verb::get, "/app.js", etag);
  EXPECT_EQ(changed.res.result(), http::status::ok);
  EXPECT_NE(changed.res[http::field::etag], etag);
}

TEST_F(StaticFilesTest, DirectoriesServeIndexHtml) {
  StaticFiles files(root_);
  auto root = run(files, http::verb::get, "/");
  EXPECT_EQ(root.res.result(), http::status::ok);
  EXPECT_EQ(root.res.body(), "<h1>home</h1>");
  EXPECT_EQ(root.res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(run(files, http::verb::get, "/?x=1").res.body(), "<h1>home</h1>");
  EXPECT_EQ(run(files, http::verb::get, "/sub/").res.body(), "<h1>sub</h1>");
  EXPECT_EQ(run(files, http::verb::get, "/sub").res.body(), "<h1>sub</h1>");
  EXPECT_EQ(run(files, http::verb::get, "/%73ub/index.html").res.body(), "<h1>sub</h1>");  // %73 = 's'
  EXPECT_EQ(run(files, http::verb::get, "/empty/").res.result(), http::status::not_found);
}

TEST_F(StaticFilesTest, MissingIsNotFound) {
  StaticFiles files(root_);
  auto res = run(files, http::verb::get, "/nope.html").res;
  EXPECT_EQ(res.result(), http::status::not_found);
  EXPECT_TRUE(res[http::field::content_type].starts_with("text/plain"));
  EXPECT_FALSE(res.body().empty());
  EXPECT_EQ(run(files, http::verb::get, "/app.js/x").res.result(), http::status::not_found);
  EXPECT_EQ(run(files, http::verb::head, "/nope.html").res.result(), http::status::not_found);
}

TEST_F(StaticFilesTest, MissingRootAnswersNotFound) {
  StaticFiles files(base_ / "does-not-exist");
  EXPECT_EQ(run(files, http::verb::get, "/").res.result(), http::status::not_found);
}

TEST_F(StaticFilesTest, RootWithTrailingSlash) {
  StaticFiles files(root_.string() + "/");
  EXPECT_EQ(run(files, http::verb::get, "/app.js").res.result(), http::status::ok);
}

TEST_F(StaticFilesTest, TraversalIsRefused) {
  StaticFiles files(root_);
  for (std::string_view target : {"/../secret", "/../../etc/passwd", "/%2e%2e/secret", "/%2E%2E/secret",
                                  "/a/%2e%2e/%2e%2e/x", "/..%2fsecret", "/sub%2f..%2f..%2fsecret", "/..%5csecret",
                                  "/app.js%00.png", "/%00", "/sub/%2e%2e", "/%zz", "not-origin-form",
                                  "http://example.com/app.js", "/a b"}) {
    auto res = run(files, http::verb::get, target).res;
    EXPECT_EQ(res.result(), http::status::bad_request) << target;
    EXPECT_EQ(res.body().find("secret"), std::string::npos);
  }
}

TEST_F(StaticFilesTest, SymlinkEscapeIsNotFound) {
  fs::create_directory_symlink(base_ / "outside", root_ / "out");
  fs::create_symlink(base_ / "secret", root_ / "secret.txt");
  fs::create_symlink(root_ / "app.js", root_ / "alias.js");  // stays inside: fine
  StaticFiles files(root_);
  EXPECT_EQ(run(files, http::verb::get, "/out/passwd").res.result(), http::status::not_found);
  EXPECT_EQ(run(files, http::verb::get, "/secret.txt").res.result(), http::status::not_found);
  EXPECT_EQ(run(files, http::verb::head, "/secret.txt").res.result(), http::status::not_found);
  auto alias = run(files, http::verb::get, "/alias.js").res;
  EXPECT_EQ(alias.result(), http::status::ok);
  EXPECT_EQ(alias.body(), "console.log(1);");
}

TEST_F(StaticFilesTest, RootReachedThroughSymlink) {
  // A root configured through a symlink still serves its files: containment compares canonical paths.
  fs::create_directory_symlink(root_, base_ / "www-link");
  StaticFiles files(base_ / "www-link");
  EXPECT_EQ(run(files, http::verb::get, "/app.js").res.result(), http::status::ok);
}

TEST_F(StaticFilesTest, OtherMethodsAreNotAllowed) {
  StaticFiles files(root_);
  for (http::verb method : {http::verb::post, http::verb::put, http::verb::delete_, http::verb::options}) {
    auto res = run(files, method, "/app.js").res;
    EXPECT_EQ(res.result(), http::status::method_not_allowed);
    EXPECT_EQ(res[http::field::allow], "GET, HEAD");
  }
}

}  // namespace
}  // namespace rtsync::server

namespace rtsync::server {
namespace {

// Precompressed copies (FILE.br, FILE.gz) go to clients that accept them, with Content-Encoding, Vary
// and an ETag of their own; a copy older than its file is stale and ignored.
TEST_F(StaticFilesTest, PrecompressedCopiesFollowAcceptEncoding) {
  write_file(root_ / "big.js", "plain");
  write_file(root_ / "big.js.gz", "gzipped");
  write_file(root_ / "big.js.br", "brotli");
  StaticFiles files(root_);
  const auto get = [&](std::string_view ae) { return run(files, http::verb::get, "/big.js", {}, ae).res; };

  auto r = get("gzip, deflate, br");
  EXPECT_EQ(r.body(), "brotli");
  EXPECT_EQ(r[http::field::content_encoding], "br");
  EXPECT_EQ(r[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(r[http::field::vary], "Accept-Encoding");
  const std::string br_etag(r[http::field::etag]);
  r = get("gzip");
  EXPECT_EQ(r.body(), "gzipped");
  EXPECT_EQ(r[http::field::content_encoding], "gzip");
  EXPECT_NE(std::string(r[http::field::etag]), br_etag);
  r = get("br;q=0, gzip;q=0.5");
  EXPECT_EQ(r.body(), "gzipped");
  r = get("*");
  EXPECT_EQ(r.body(), "brotli");
  r = get("identity, gzip;q=0.000");
  EXPECT_EQ(r.body(), "plain");
  EXPECT_EQ(r.count(http::field::content_encoding), 0u);
  EXPECT_EQ(r[http::field::vary], "Accept-Encoding");  // it varies even when the plain file is sent
  r = get("");
  EXPECT_EQ(r.body(), "plain");
  // A conditional request for the coding already held: 304 with the same Vary.
  auto again = run(files, http::verb::get, "/big.js", br_etag, "br").res;
  EXPECT_EQ(again.result(), http::status::not_modified);
  EXPECT_EQ(again[http::field::vary], "Accept-Encoding");
  // A HEAD announces the copy's length.
  auto head = run(files, http::verb::head, "/big.js", {}, "br").res;
  EXPECT_EQ(head[http::field::content_length], "6");

  // The file rewritten after its copies: they are stale and the plain file is served.
  fs::last_write_time(root_ / "big.js", fs::last_write_time(root_ / "big.js.br") + std::chrono::seconds(5));
  r = get("br, gzip");
  EXPECT_EQ(r.body(), "plain");
  EXPECT_EQ(r.count(http::field::vary), 0u);

  // A file without copies does not vary.
  EXPECT_EQ(run(files, http::verb::get, "/app.js", {}, "br").res.count(http::field::vary), 0u);
}

// Names that carry their content hash (esbuild's NAME-HASH.EXT) are cached for a year; others revalidate.
TEST_F(StaticFilesTest, HashedNamesAreImmutable) {
  write_file(root_ / "assets" / "app-Q3ZK5TNB.js", "x");
  write_file(root_ / "assets" / "my-module.js", "x");
  write_file(root_ / "assets" / "app-q3zk5tnb.js", "x");
  StaticFiles files(root_);
  EXPECT_EQ(run(files, http::verb::get, "/assets/app-Q3ZK5TNB.js").res[http::field::cache_control],
            "public, max-age=31536000, immutable");
  EXPECT_EQ(run(files, http::verb::get, "/assets/my-module.js").res[http::field::cache_control], "no-cache");
  EXPECT_EQ(run(files, http::verb::get, "/assets/app-q3zk5tnb.js").res[http::field::cache_control], "no-cache");
  EXPECT_EQ(run(files, http::verb::get, "/app.js").res[http::field::cache_control], "no-cache");
}

}  // namespace
}  // namespace rtsync::server
