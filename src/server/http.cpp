// The two response builders every REST handler ends with. API answers are never cached (they change with
// every publication), and they echo the request's version and keep-alive so a handler cannot forget to.
#include "server/http.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <iterator>
#include <utility>
#include <vector>

namespace rtsync::server {

StringResponse json_response(const Request& req, http::status status, std::string body) {
  StringResponse res{status, req.version()};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

StringResponse error_response(const Request& req, http::status status, std::string_view code,
                              std::string_view message) {
  // Built with Boost.JSON so a message quoting user input (a channel name, a parse error) stays valid JSON.
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  boost::json::object root;
  root["error"] = std::move(error);
  return json_response(req, status, boost::json::serialize(root));
}

namespace {
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::optional<FramingError> check_framing(const Request& req) {
  auto [host, hosts_end] = req.equal_range(http::field::host);
  const auto hosts = std::distance(host, hosts_end);
  if (hosts > 1) return FramingError{http::status::bad_request, "more than one Host header"};
  if (hosts == 0 && req.version() >= 11) return FramingError{http::status::bad_request, "missing Host header"};
  if (hosts == 1 && !host->value().empty()) {
    // The same-host Origin check compares with Host, so it must be a plain uri-host[:port].
    auto authority = boost::urls::parse_authority(host->value());
    if (!authority || authority->has_userinfo()) return FramingError{http::status::bad_request, "invalid Host header"};
  }

  // Transfer codings of every Transfer-Encoding line, in order (RFC 9112 §6.1).
  std::vector<std::string_view> codings;
  for (auto [te, te_end] = req.equal_range(http::field::transfer_encoding); te != te_end; ++te) {
    std::string_view list = te->value();
    for (;;) {
      auto comma = list.find(',');
      auto coding = trim_ows(list.substr(0, comma));
      if (!coding.empty()) codings.push_back(coding);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (req.count(http::field::transfer_encoding) == 0) return std::nullopt;
  // §6.1: Transfer-Encoding did not exist in 1.0; a 1.0 message carrying it may have been forged.
  if (req.version() < 11) return FramingError{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request"};
  // §6.3: without chunked last, the body's length cannot be determined.
  if (codings.empty() || !boost::beast::iequals(codings.back(), "chunked"))
    return FramingError{http::status::bad_request, "the final transfer coding must be chunked"};
  if (codings.size() > 1) return FramingError{http::status::not_implemented, "only the chunked transfer coding is supported"};
  return std::nullopt;
}

bool has_obs_fold(std::string_view head) {
  for (auto at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    if (at + 2 < head.size() && (head[at + 2] == ' ' || head[at + 2] == '\t')) return true;
  }
  return false;
}

bool valid_websocket_key(std::string_view key) {
  // 16 bytes are 22 base64 characters and "=="; the last one carries 2 bits, so its low 4 bits are 0.
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (alphabet.find(key[i]) == std::string_view::npos) return false;
  return (alphabet.find(key[21]) & 0x0f) == 0;
}

}  // namespace rtsync::server
