// The two response builders every REST handler ends with. API answers are never cached (they change with
// every publication), and they echo the request's version and keep-alive so a handler cannot forget to.
#include "server/http.hpp"

#include <boost/json.hpp>

#include <utility>

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

}  // namespace rtsync::server
