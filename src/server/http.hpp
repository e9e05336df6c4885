// HTTP vocabulary shared by the server's handlers.
#pragma once

#include <boost/beast/http.hpp>

#include <string>
#include <string_view>

namespace rtsync::server {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using StringResponse = http::response<http::string_body>;

// A JSON response with the headers every API answer carries.
StringResponse json_response(const Request& req, http::status status, std::string body);
// {"error":{"code":"…","message":"…"}} with the given status.
StringResponse error_response(const Request& req, http::status status, std::string_view code,
                              std::string_view message);

}  // namespace rtsync::server
