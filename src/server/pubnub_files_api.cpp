// PubNub files (docs/pubnub.md, section 7.6), the REST side of service::PubnubFiles:
//   POST   /v1/files/{sub}/channels/{ch}/generate-upload-url   {"name":N} → an id and the upload's URL
//   POST   /v1/files/{sub}/channels/{ch}/upload/{id}           multipart/form-data with a "file" part → 204
//   GET    /v1/files/{sub}/channels/{ch}/files?limit=&next=    the channel's files, oldest first
//   GET    /v1/files/{sub}/channels/{ch}/files/{id}/{name}     the bytes (the SDK's getFileUrl/downloadFile)
//   DELETE /v1/files/{sub}/channels/{ch}/files/{id}/{name}
// The file's message (publishFile) is a publish: pubnub.cpp. Where PubNub's upload URL is a storage
// bucket's, with a signed policy in its form fields, rtsync's is its own, and the reserved id is the
// permission (the SDK sends no auth with an upload).
#include <boost/json.hpp>

#include <ctime>

#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "protocol/multipart.hpp"
#include "server/pubnub_detail.hpp"

namespace rtsync::server::pubnub {

namespace {

namespace json = boost::json;
constexpr std::string_view kService = "files";

StringResponse files_error(const Request& req, http::status status, std::string_view message) {
  return error(req, status, message, kService);
}

// ISO 8601 in UTC with milliseconds, as PubNub writes `created`.
std::string iso_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

void append_file(std::string& out, const service::FileInfo& f) {
  out += "{\"name\":";
  common::append_json_string(out, f.name);
  out += ",\"id\":";
  common::append_json_string(out, f.id);
  out += ",\"size\":";
  out += std::to_string(f.size);
  out += ",\"created\":";
  common::append_json_string(out, iso_time(f.created));
  out += '}';
}

// The request's origin, for the upload URL the SDK posts to: its Host, over https when a proxy in front
// says the client used it.
std::string origin_of(const Request& req) {
  const bool tls = boost::beast::iequals(req["X-Forwarded-Proto"], "https");
  return std::string(tls ? "https://" : "http://") + std::string(req[http::field::host]);
}

void generate_upload_url(Call& c, const core::ChannelRef& ch, std::string_view sub_key, std::string_view raw_channel) {
  const auto& req = c.req;
  if (c.ctx.channels.check_publish(*ch, c.caller())) return c.respond(forbidden(req, ch->name()));
  boost::system::error_code ec;
  auto body = json::parse(req.body(), ec);
  const auto* o = ec ? nullptr : body.if_object();
  const auto* name = o ? o->if_contains("name") : nullptr;
  if (!name || !name->is_string() || !service::valid_file_name(name->get_string()))
    return c.respond(files_error(req, http::status::bad_request, "Invalid file name"));
  const std::string file_name(name->get_string());
  auto& files = *c.ctx.pubnub_files;
  const std::string id = files.reserve(ch->name(), file_name);
  const std::string url = origin_of(req) + "/v1/files/" + std::string(sub_key) + "/channels/" +
                          std::string(raw_channel) + "/upload/" + id;
  std::string out = "{\"status\":200,\"data\":{\"id\":";
  common::append_json_string(out, id);
  out += ",\"name\":";
  common::append_json_string(out, file_name);
  out += "},\"file_upload_request\":{\"url\":";
  common::append_json_string(out, url);
  out += ",\"method\":\"POST\",\"expiration_date\":";
  const auto deadline = common::now_ms() + std::chrono::milliseconds(service::PubnubFiles::kUploadWindow).count();
  common::append_json_string(out, iso_time(deadline));
  // The form fields the SDK posts back with the file (it builds a multipart body only when there is one):
  // the id it uploads.
  out += ",\"form_fields\":[{\"key\":\"id\",\"value\":";
  common::append_json_string(out, id);
  out += "}]}}";
  c.respond(reply(req, http::status::ok, std::move(out)));
}

void upload(Call& c, const core::ChannelRef& ch, std::string_view id) {
  const auto& req = c.req;
  auto boundary = protocol::multipart::boundary_of(req[http::field::content_type]);
  if (!boundary) return c.respond(files_error(req, http::status::bad_request, "Expected a multipart/form-data body"));
  auto parts = protocol::multipart::parse(req.body(), *boundary);
  if (!parts) return c.respond(files_error(req, http::status::bad_request, "Malformed multipart body"));
  const protocol::multipart::Part* file = nullptr;
  for (const auto& p : *parts)
    if (p.name == "file") file = &p;
  if (!file) return c.respond(files_error(req, http::status::bad_request, "No \"file\" part in the upload"));
  auto& files = *c.ctx.pubnub_files;
  if (file->body.size() > files.max_size())
    return c.respond(files_error(req, http::status::payload_too_large, "File larger than [pubnub] max_file_size"));
  // The file part's type, as a browser gives it (SDK 11 in Node always sends application/octet-stream,
  // whatever its mimeType); the download answers it.
  std::string mime = file->content_type == "application/octet-stream" ? "" : file->content_type;
  if (mime.size() > 255 || mime.find_first_of("\r\n") != std::string::npos)
    return c.respond(files_error(req, http::status::bad_request, "Invalid Content-Type"));
  files.store(ch->name(), std::string(id), std::string(file->body), std::move(mime), c.post,
              [&req, respond = c.respond](bool ok) {
                if (!ok) return respond(files_error(req, http::status::not_found, "No such upload (or it expired)"));
                auto res = reply(req, http::status::no_content, "");
                res.erase(http::field::content_type);
                respond(std::move(res));
              });
}

void list(Call& c, const core::ChannelRef& ch) {
  const auto& req = c.req;
  if (c.ctx.channels.check_subscribe(*ch, c.caller())) return c.respond(forbidden(req, ch->name()));
  std::size_t limit = service::PubnubFiles::kMaxList;
  if (const auto* l = c.param("limit"); l && !l->empty()) {
    auto v = parse_uint(*l);
    if (!v || *v == 0) return c.respond(files_error(req, http::status::bad_request, "Invalid limit"));
    limit = static_cast<std::size_t>(std::min<std::uint64_t>(*v, limit));
  }
  const auto* next = c.param("next");
  bool more = false;
  auto page = c.ctx.pubnub_files->list(ch->name(), limit, next ? *next : "", more);
  std::string out = "{\"status\":200,\"data\":[";
  for (std::size_t i = 0; i < page.size(); ++i) {
    if (i) out += ',';
    append_file(out, page[i]);
  }
  out += "],";
  if (more) {
    out += "\"next\":";
    common::append_json_string(out, service::PubnubFiles::next_page(page.back()));
    out += ',';
  }
  out += "\"count\":" + std::to_string(page.size()) + '}';
  c.respond(reply(req, http::status::ok, std::move(out)));
}

void download(Call& c, const core::ChannelRef& ch, const service::FileInfo& f) {
  const auto& req = c.req;
  if (c.ctx.channels.check_subscribe(*ch, c.caller())) return c.respond(forbidden(req, ch->name()));
  c.ctx.pubnub_files->read(ch->name(), f, c.post, [&req, respond = c.respond, f](std::optional<std::string> bytes) {
    if (!bytes) return respond(files_error(req, http::status::not_found, "File not found"));
    StringResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, f.mime.empty() ? "application/octet-stream" : f.mime);
    res.set(http::field::access_control_allow_origin, "*");
    // Never rendered as a page of this origin: an upload is anyone's bytes.
    res.set(http::field::content_disposition, "attachment");
    res.set("X-Content-Type-Options", "nosniff");
    res.set(http::field::cache_control, "private, max-age=0");
    res.keep_alive(req.keep_alive());
    if (req.method() != http::verb::head) res.body() = std::move(*bytes);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.content_length(f.size);
    respond(std::move(res));
  });
}

}  // namespace

void files(Call& c) {
  const auto& req = c.req;
  const auto& s = c.seg;
  const auto method = req.method();
  const bool get = method == http::verb::get || method == http::verb::head;
  // /v1/files/{sub}/channels/{ch}/…
  if (s.size() < 6 || s[3] != "channels")
    return c.respond(files_error(req, http::status::bad_request, "Invalid files path"));
  auto key = subscribe_key(c, s[2]);
  if (!key) return;
  auto name = pct_decode(s[4]);
  if (!name) return c.respond(files_error(req, http::status::bad_request, "Invalid channel"));
  auto res = c.ctx.channels.resolve(*name);
  if (auto* e = std::get_if<protocol::Error>(&res))
    return c.respond(files_error(req, status_for(*e), "Invalid channel \"" + *name + "\": " + e->message));
  auto ch = std::get<core::ChannelRef>(std::move(res));
  const auto what = s[5];
  const auto not_allowed = [&] { c.respond(files_error(req, http::status::method_not_allowed, "Method not allowed")); };
  if (what == "generate-upload-url" && s.size() == 6)
    return method == http::verb::post ? generate_upload_url(c, ch, *key, s[4]) : not_allowed();
  if (what == "upload" && s.size() == 7) return method == http::verb::post ? upload(c, ch, s[6]) : not_allowed();
  if (what == "files" && s.size() == 6) return get ? list(c, ch) : not_allowed();
  if (what == "files" && s.size() == 8) {
    auto id = pct_decode(s[6]);
    auto file_name = pct_decode(s[7]);
    if (!id || !file_name) return c.respond(files_error(req, http::status::bad_request, "Invalid file path"));
    if (method == http::verb::delete_) {
      if (!may_remove(c, *ch)) return c.respond(forbidden(req, ch->name()));
      if (!c.ctx.pubnub_files->remove(ch->name(), *id, *file_name))
        return c.respond(files_error(req, http::status::not_found, "File not found"));
      return c.respond(reply(req, http::status::ok, "{\"status\":200}"));
    }
    if (!get) return not_allowed();
    auto f = c.ctx.pubnub_files->find(ch->name(), *id, *file_name);
    if (!f) return c.respond(files_error(req, http::status::not_found, "File not found"));
    return download(c, ch, *f);
  }
  c.respond(files_error(req, http::status::bad_request, "Invalid files path"));
}

}  // namespace rtsync::server::pubnub
