// Static files from the web root: GET and HEAD, MIME types by extension, strong ETags and 304s,
// index.html for directories, and no way out of the root (no "..", no encoded separators, no symlink
// escapes).
#pragma once

#include <filesystem>

#include <boost/beast/http/message_generator.hpp>

#include "server/http.hpp"

namespace rtsync::server {

class StaticFiles {
 public:
  explicit StaticFiles(std::filesystem::path root);
  // Always answers: 200, 304, 400 (bad path), 404, 405 (not GET/HEAD, with Allow). A non-empty
  // `set_cookie` is sent as the Set-Cookie header (the anonymous identity, PROTOCOL §3).
  http::message_generator serve(const Request& req, std::string_view set_cookie = {}) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;  // canonical
};

// "text/html; charset=utf-8", "text/javascript; charset=utf-8", ... by extension.
std::string_view mime_type(std::string_view path);

}  // namespace rtsync::server
