// Serving the web root. The path checks come in two layers because each catches what the other cannot:
// the decoded request segments are refused when they could climb or smuggle a separator ("..", "%2f",
// "%5c", "%00"), and the final path is canonicalized and must still lie under the root, which is what
// stops a symlink inside the root that points elsewhere. Files are validated with ETags (no-cache), so a
// redeployed app is picked up on the next load while unchanged files cost a 304; files whose names carry
// their content hash are cached for a year. A file's precompressed copies (FILE.br, FILE.gz, made by the
// asset build) are sent to clients that accept them, so nothing is compressed per request.
#include "server/static_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace rtsync::server {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kNoSniff = "nosniff";

// The root as it will compare against canonicalized request paths. A root that does not exist yet still
// gets an absolute, normalized form: every request then answers 404 instead of the server failing.
fs::path canonical_root(const fs::path& root) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(root, ec);
  if (ec) p = fs::absolute(root, ec).lexically_normal();
  // "/srv/web/" would keep an empty last component and no file under it would match as a prefix.
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p;
}

bool is_within(const fs::path& root, const fs::path& p) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end();
}

template <class Body>
void common_headers(http::response<Body>& res, const Request& req, std::string_view set_cookie) {
  res.version(req.version());
  if (!set_cookie.empty()) res.set(http::field::set_cookie, set_cookie);
  res.keep_alive(req.keep_alive());
  res.set("X-Content-Type-Options", kNoSniff);  // Beast 1.81 has no enumerator for it
  res.set("Referrer-Policy", "strict-origin-when-cross-origin");
}

// Pages may only run the server's own scripts and styles (no inline code, nothing from elsewhere), talk
// to this server (fetch, WebSocket), and cannot be framed: a defence in depth behind rendering data as
// text. Bootstrap's popovers position themselves through the CSSOM, which style-src does not restrict.
constexpr std::string_view kPageCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'";

http::message_generator plain(const Request& req, http::status status, std::string_view text,
                              std::string_view set_cookie) {
  StringResponse res{status, req.version()};
  common_headers(res, req, set_cookie);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::method_not_allowed) res.set(http::field::allow, "GET, HEAD");
  // A HEAD answer describes the GET answer (Content-Length included) without sending its body.
  res.body() = std::string(text);
  res.prepare_payload();
  if (req.method() == http::verb::head) {
    http::response<http::empty_body> head{status, req.version()};
    head.base() = res.base();
    return head;
  }
  return res;
}

http::message_generator not_found(const Request& req, std::string_view set_cookie) {
  return plain(req, http::status::not_found, "Not Found\n", set_cookie);
}

// RFC 9110 IMF-fixdate, built by hand because strftime's %a/%b follow the process locale.
std::string http_date(std::time_t t) {
  static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return {};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[static_cast<std::size_t>(tm.tm_wday)],
                tm.tm_mday, months[static_cast<std::size_t>(tm.tm_mon)], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// If-None-Match uses weak comparison (RFC 9110 §13.1.2): a W/ prefix on either side does not matter.
bool none_match(std::string_view header, std::string_view etag) {
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
  }
  return false;
}

// The codings a request accepts among br and gzip (RFC 9110 §12.5.3): a listed coding with q > 0, or "*"
// with q > 0 for those not listed. "identity" is always acceptable here (the plain file is always there).
struct Accepted {
  bool br = false;
  bool gzip = false;
};
Accepted accepted_codings(std::string_view header) {
  std::optional<bool> br, gzip, any;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto semi = item.find(';');
    std::string coding(trim(item.substr(0, semi)));
    std::transform(coding.begin(), coding.end(), coding.begin(), [](unsigned char c) { return std::tolower(c); });
    bool ok = true;
    if (semi != std::string_view::npos) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        param.remove_prefix(2);
        // q=0, q=0.0, q=0.00, q=0.000 refuse; anything else accepts.
        ok = param.find_first_not_of("0.") != std::string_view::npos;
      }
    }
    if (coding == "br") br = ok;
    else if (coding == "gzip" || coding == "x-gzip") gzip = ok;
    else if (coding == "*") any = ok;
  }
  return Accepted{br.value_or(any.value_or(false)), gzip.value_or(any.value_or(false))};
}

// A precompressed copy of a file (FILE.br, FILE.gz): used when it lies in the root like the file and is
// not older than it (a stale copy would serve old content).
struct Variant {
  fs::path path;
  std::string_view coding;  // Content-Encoding
  std::string_view tag;     // ETag suffix
};
std::optional<Variant> variant(const fs::path& root, const fs::path& file, const struct stat& st,
                               std::string_view ext, std::string_view coding, std::string_view tag) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(file.native() + std::string(ext)), ec);
  struct stat vst {};
  if (ec || !is_within(root, p) || ::stat(p.c_str(), &vst) != 0 || !S_ISREG(vst.st_mode)) return std::nullopt;
  if (vst.st_mtim.tv_sec < st.st_mtim.tv_sec ||
      (vst.st_mtim.tv_sec == st.st_mtim.tv_sec && vst.st_mtim.tv_nsec < st.st_mtim.tv_nsec)) {
    return std::nullopt;
  }
  return Variant{std::move(p), coding, tag};
}

// Whether a file name carries its content's hash, as the asset build names them (NAME-HASH.EXT with HASH
// 8 or more of A-Z and 0-9, esbuild's `[name]-[hash]`): such a file never changes, so it may be cached
// for a year without asking again.
bool hashed_name(std::string_view name) {
  const auto dot = name.rfind('.');
  const auto dash = name.rfind('-', dot);
  if (dot == std::string_view::npos || dash == std::string_view::npos || dot - dash - 1 < 8) return false;
  const std::string_view hash = name.substr(dash + 1, dot - dash - 1);
  return std::all_of(hash.begin(), hash.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

// The request target as a path under `root`, or nullopt when it must be refused with 400.
std::optional<fs::path> map_target(const fs::path& root, std::string_view target) {
  // The query never selects a file; dropping it first also spares a sloppy query from a 400.
  target = target.substr(0, target.find('?'));
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  fs::path p = root;
  for (std::string seg : url->segments()) {  // percent-decoded
    if (seg == "..") return std::nullopt;
    if (seg.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) return std::nullopt;
    if (seg.empty() || seg == ".") continue;
    p /= seg;
  }
  return p;
}

}  // namespace

StaticFiles::StaticFiles(fs::path root) : root_(canonical_root(root)) {}

http::message_generator StaticFiles::serve(const Request& req, std::string_view set_cookie) const {
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    return plain(req, http::status::method_not_allowed, "Method Not Allowed\n", set_cookie);
  }
  auto mapped = map_target(root_, req.target());
  if (!mapped) return plain(req, http::status::bad_request, "Bad Request\n", set_cookie);

  std::error_code ec;
  fs::path path = std::move(*mapped);
  if (fs::is_directory(path, ec)) path /= "index.html";
  // Resolves every symlink on the way, so the containment check sees where the file really is.
  path = fs::weakly_canonical(path, ec);
  if (ec || !is_within(root_, path) || !fs::is_regular_file(path, ec)) return not_found(req, set_cookie);

  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return not_found(req, set_cookie);
  // Precompressed copies, when the client accepts them: Brotli first (smaller), then gzip.
  std::optional<Variant> chosen;
  bool varies = false;
  {
    const auto ae = req.find(http::field::accept_encoding);
    const Accepted ok = accepted_codings(ae == req.end() ? std::string_view{} : std::string_view(ae->value()));
    auto br = variant(root_, path, st, ".br", "br", "-br");
    auto gz = variant(root_, path, st, ".gz", "gzip", "-gz");
    varies = br || gz;
    if (br && ok.br) chosen = std::move(br);
    else if (gz && ok.gzip) chosen = std::move(gz);
  }

  http::file_body::value_type file;
  boost::beast::error_code bec;
  file.open((chosen ? chosen->path : path).c_str(), boost::beast::file_mode::scan, bec);
  if (bec) return not_found(req, set_cookie);
  // fstat on the open descriptor: the validators describe exactly the bytes that will be sent.
  if (::fstat(file.file().native_handle(), &st) != 0 || !S_ISREG(st.st_mode)) return not_found(req, set_cookie);
  auto mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000u +
                  static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
  char etag_buf[64];
  std::snprintf(etag_buf, sizeof etag_buf, "\"%llx-%llx%s\"", static_cast<unsigned long long>(st.st_size),
                static_cast<unsigned long long>(mtime_ns), chosen ? std::string(chosen->tag).c_str() : "");
  std::string etag = etag_buf;
  const bool immutable = hashed_name(path.filename().native());

  auto validators = [&](auto& res) {
    common_headers(res, req, set_cookie);
    res.set(http::field::etag, etag);
    res.set(http::field::cache_control, immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (varies) res.set(http::field::vary, "Accept-Encoding");
    if (chosen) res.set(http::field::content_encoding, chosen->coding);
    if (auto date = http_date(st.st_mtim.tv_sec); !date.empty()) res.set(http::field::last_modified, date);
  };

  if (auto inm = req.find(http::field::if_none_match); inm != req.end() && none_match(inm->value(), etag)) {
    http::response<http::empty_body> res{http::status::not_modified, req.version()};
    validators(res);
    return res;
  }

  auto content_type = mime_type(path.native());
  const bool page = content_type.starts_with("text/html");
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (req.method() == http::verb::head) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    validators(res);
    res.set(http::field::content_type, content_type);
    if (page) res.set("Content-Security-Policy", kPageCsp);
    res.content_length(size);
    return res;
  }
  http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(file)),
                                      std::make_tuple(http::status::ok, req.version())};
  validators(res);
  res.set(http::field::content_type, content_type);
  if (page) res.set("Content-Security-Policy", kPageCsp);
  res.content_length(size);
  return res;
}

std::string_view mime_type(std::string_view path) {
  auto slash = path.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });

  struct Entry {
    std::string_view ext, type;
  };
  static constexpr Entry kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json; charset=utf-8"},
      {"map", "application/json; charset=utf-8"},
      {"svg", "image/svg+xml; charset=utf-8"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"txt", "text/plain; charset=utf-8"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
  };
  for (const auto& e : kTypes) {
    if (e.ext == ext) return e.type;
  }
  return "application/octet-stream";
}

}  // namespace rtsync::server
