// multipart/form-data parsing. See multipart.hpp.
#include "protocol/multipart.hpp"

#include <boost/beast/core/string.hpp>

#include <cctype>

namespace rtsync::protocol::multipart {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `key` among `;`-separated parameters (`name="x"; filename=y`), unquoted; nullopt: absent.
std::optional<std::string> parameter(std::string_view params, std::string_view key) {
  while (!params.empty()) {
    // The next ';' outside quotes.
    std::size_t semi = 0;
    for (bool quoted = false; semi < params.size() && (quoted || params[semi] != ';'); ++semi) {
      if (params[semi] == '\\' && quoted) ++semi;
      else if (params[semi] == '"') quoted = !quoted;
    }
    if (semi >= params.size()) semi = std::string_view::npos;
    auto item = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos || !boost::beast::iequals(trim(item.substr(0, eq)), key)) continue;
    auto v = trim(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      std::string out;
      for (std::size_t i = 1; i + 1 < v.size(); ++i) {
        if (v[i] == '\\' && i + 2 < v.size()) ++i;
        out += v[i];
      }
      return out;
    }
    return std::string(v);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> boundary_of(std::string_view content_type) {
  auto semi = content_type.find(';');
  if (!boost::beast::iequals(trim(content_type.substr(0, semi)), "multipart/form-data") || semi == std::string_view::npos)
    return std::nullopt;
  auto b = parameter(content_type.substr(semi + 1), "boundary");
  if (!b || b->empty() || b->size() > 70) return std::nullopt;
  return b;
}

std::optional<std::vector<Part>> parse(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string between = "\r\n" + delimiter;
  if (!body.starts_with(delimiter)) return std::nullopt;
  std::size_t pos = delimiter.size();
  std::vector<Part> parts;
  for (;;) {
    if (body.substr(pos).starts_with("--")) return parts;  // the closing delimiter
    // Transport padding after a delimiter, then its CRLF.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (!body.substr(pos).starts_with("\r\n")) return std::nullopt;
    pos += 2;
    const auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return std::nullopt;
    const auto end = body.find(between, head_end + 4);
    if (end == std::string_view::npos) return std::nullopt;
    Part part;
    std::string_view headers = body.substr(pos, head_end - pos);
    bool named = false;
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      auto colon = line.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      auto field = trim(line.substr(0, colon));
      auto value = trim(line.substr(colon + 1));
      if (boost::beast::iequals(field, "Content-Disposition")) {
        auto semi = value.find(';');
        if (!boost::beast::iequals(trim(value.substr(0, semi)), "form-data") || semi == std::string_view::npos)
          return std::nullopt;
        auto name = parameter(value.substr(semi + 1), "name");
        if (!name) return std::nullopt;
        part.name = std::move(*name);
        part.filename = parameter(value.substr(semi + 1), "filename").value_or("");
        named = true;
      } else if (boost::beast::iequals(field, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    if (!named) return std::nullopt;
    part.body = body.substr(head_end + 4, end - head_end - 4);
    parts.push_back(std::move(part));
    pos = end + between.size();
  }
}

}  // namespace rtsync::protocol::multipart
