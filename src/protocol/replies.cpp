// Bodies of successful answers. See replies.hpp.
#include "protocol/replies.hpp"

#include "common/json_text.hpp"
#include "protocol/messages.hpp"

namespace rtsync::protocol {

using common::append_int;
using common::append_json_string;

namespace {
// {"NAME":VALUE}, VALUE being JSON text.
std::string one_member(std::string_view name, std::string_view value) {
  std::string out = "{\"";
  out += name;
  out += "\":";
  out += value;
  out += '}';
  return out;
}
}  // namespace

std::string offset_body(std::uint64_t offset) { return one_member("offset", std::to_string(offset)); }
std::string version_body(std::uint64_t v) { return one_member("v", std::to_string(v)); }
std::string doc_body(std::string_view doc) { return one_member("doc", doc); }
std::string data_body(std::string_view data) { return one_member("data", data); }

std::string user_body(std::string_view user) {
  std::string name;
  append_json_string(name, user);
  return one_member("user", name);
}

namespace {
// ,"offset":N,"epoch":"E"} : the position a snapshot matches, closing its body.
void close_with_position(std::string& out, std::uint64_t offset, std::string_view epoch) {
  out += ",\"offset\":";
  append_int(out, offset);
  out += ",\"epoch\":";
  append_json_string(out, epoch);
  out += '}';
}
}  // namespace

std::string tally_body(std::string_view tally, std::uint64_t offset, std::string_view epoch) {
  std::string out = "{\"tally\":";
  out += tally;
  close_with_position(out, offset, epoch);
  return out;
}

void append_json_texts(std::string& out, const std::vector<std::string>& texts) {
  out += '[';
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i) out += ',';
    out += texts[i];
  }
  out += ']';
}

std::string list_body(const std::vector<std::string>& docs, std::uint64_t offset, std::string_view epoch,
                      const std::optional<std::string>& next) {
  std::string out = "{\"docs\":";
  append_json_texts(out, docs);
  out += ",\"next\":";
  if (next) {
    append_json_string(out, *next);
  } else {
    out += "null";
  }
  close_with_position(out, offset, epoch);
  return out;
}

std::string presence_body(const core::PresenceResult& p) {
  std::string out = "{\"clients\":[";
  for (std::size_t i = 0; i < p.clients.size(); ++i) {
    const auto& m = p.clients[i];
    if (i) out += ',';
    out += '{';
    append_member_fields(out, m);
    out += '}';
  }
  out += "],\"users\":";
  append_int(out, p.users);
  out += ",\"sessions\":";
  append_int(out, p.sessions);
  out += '}';
  return out;
}

std::string sub_body(const core::SubscribeResult& r, std::size_t room) {
  std::string out = "{\"offset\":";
  append_int(out, r.offset);
  out += ",\"epoch\":";
  append_json_string(out, r.epoch);
  const std::size_t head = out.size();
  out += r.recovered ? ",\"recovered\":true,\"pubs\":" : ",\"recovered\":false,\"pubs\":";
  append_publications(out, r.pubs);
  out += '}';
  if (out.size() > room) {
    out.resize(head);
    out += ",\"recovered\":false,\"truncated\":true,\"pubs\":[]}";
  }
  return out;
}

}  // namespace rtsync::protocol
