// Decoding of commands into typed requests. See requests.hpp.
#include "protocol/requests.hpp"

#include <algorithm>
#include <charconv>

#include "core/channel_name.hpp"

namespace rtsync::protocol {

namespace json = boost::json;

namespace {

Error bad(std::string message) { return Error{Code::bad_request, std::move(message)}; }

// An optional non-negative integer field; false when present with another type.
bool read_uint(const json::object& o, std::string_view key, std::optional<std::uint64_t>& out) {
  auto* v = o.if_contains(key);
  if (!v) return true;
  if (auto* i = v->if_int64()) {
    if (*i < 0) return false;
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  if (auto* u = v->if_uint64()) {
    out = *u;
    return true;
  }
  return false;
}

bool read_bool(const json::object& o, std::string_view key, bool& out) {
  auto* v = o.if_contains(key);
  if (!v) return true;
  if (!v->is_bool()) return false;
  out = v->get_bool();
  return true;
}

// `ch` (its name is checked when it is resolved).
std::optional<std::string> channel_field(const json::object& o) {
  auto* ch = o.if_contains("ch");
  if (!ch || !ch->is_string()) return std::nullopt;
  return std::string(ch->get_string());
}

std::optional<std::string> collection_field(const json::object& o) {
  auto* c = o.if_contains("coll");
  if (!c || !c->is_string()) return std::nullopt;
  return std::string(c->get_string());
}

// The optional `key`; false when present but not 1-max_key characters.
bool key_field(const json::object& o, std::string& key) {
  auto* k = o.if_contains("key");
  if (!k) return true;
  if (!k->is_string() || !valid_key(k->get_string())) return false;
  key = std::string(k->get_string());
  return true;
}

// The optional outbox `seq`: 1..max_seq, and not with a `key` (the seq is the write's key).
bool seq_field(const json::object& o, const std::string& key, std::optional<std::uint64_t>& seq) {
  if (!read_uint(o, "seq", seq)) return false;
  return !seq || (*seq >= 1 && *seq <= max_seq && key.empty());
}

const char* const need_ch = "\"ch\" must be a string";
const char* const need_coll = "\"coll\" must be a string";
const char* const need_key = "\"key\" must be a string of 1-256 characters";
const char* const need_seq = "\"seq\" must be an integer from 1 to 2^53-1, and not sent with \"key\"";

}  // namespace

Decoded<SubRequest> decode_sub(const json::object& cmd) {
  SubRequest r;
  auto ch = channel_field(cmd);
  if (!ch) return bad(need_ch);
  r.ch = std::move(*ch);
  if (auto* s = cmd.if_contains("since")) {
    std::optional<std::uint64_t> offset;
    auto* obj = s->if_object();
    auto* epoch = obj ? obj->if_contains("epoch") : nullptr;
    if (!obj || !read_uint(*obj, "offset", offset) || !offset || !epoch || !epoch->is_string())
      return bad("\"since\" must be {\"offset\":N,\"epoch\":\"E\"}");
    r.since = core::StreamPosition{*offset, std::string(epoch->get_string())};
  }
  if (!read_bool(cmd, "presence", r.presence)) return bad("\"presence\" must be a boolean");
  if (auto* w = cmd.if_contains("where"); w && !w->is_null()) {
    if (!r.ch.starts_with("coll:"))
      return bad("\"where\" filters only collection change feeds (coll:NAME)");
    auto where = query::parse_where(*w);
    if (auto* e = std::get_if<query::Error>(&where)) return bad(std::move(e->message));
    r.where = std::move(std::get<query::Where>(where));
  }
  return r;
}

Decoded<ChannelRequest> decode_channel(const json::object& cmd) {
  auto ch = channel_field(cmd);
  if (!ch) return bad(need_ch);
  return ChannelRequest{std::move(*ch)};
}

Decoded<ChannelRequest> decode_unsub(const json::object& cmd) {
  auto ch = channel_field(cmd);
  if (!ch || !core::valid_channel_name(*ch)) return bad("\"ch\" must be a valid channel name");
  return ChannelRequest{std::move(*ch)};
}

Decoded<PubRequest> decode_pub(const json::object& cmd) {
  PubRequest r;
  auto ch = channel_field(cmd);
  if (!ch) return bad(need_ch);
  r.ch = std::move(*ch);
  r.data = cmd.if_contains("data");
  if (!r.data) return bad("\"data\" is required");
  if (!key_field(cmd, r.key)) return bad(need_key);
  if (!seq_field(cmd, r.key, r.seq)) return bad(need_seq);
  return r;
}

Decoded<HistoryRequest> decode_history(const json::object& cmd) {
  HistoryRequest r;
  auto ch = channel_field(cmd);
  if (!ch) return bad(need_ch);
  r.ch = std::move(*ch);
  std::optional<std::uint64_t> limit, since;
  if (!read_uint(cmd, "limit", limit) || (limit && *limit > max_history_limit))
    return bad("\"limit\" must be an integer from 0 to 1000");
  if (!read_uint(cmd, "since", since)) return bad("\"since\" must be a non-negative integer");
  if (!read_bool(cmd, "reverse", r.query.reverse)) return bad("\"reverse\" must be a boolean");
  if (limit) r.query.limit = static_cast<std::size_t>(*limit);
  r.query.since = since;
  return r;
}

Decoded<TallyRequest> decode_tally(const json::object& cmd) {
  auto coll = collection_field(cmd);
  if (!coll) return bad(need_coll);
  TallyRequest r{std::move(*coll), {}};
  if (const auto* g = cmd.if_contains("group"); g && !g->is_null()) {
    if (!g->is_string()) return bad("\"group\" must be a string");
    r.group = std::string(g->get_string());
    if (r.group.empty()) return bad("\"group\" must not be empty");
  }
  return r;
}

Decoded<ListRequest> decode_list(const json::object& cmd) {
  auto coll = collection_field(cmd);
  if (!coll) return bad(need_coll);
  auto q = query::parse_query(cmd);
  if (auto* e = std::get_if<query::Error>(&q)) return bad(std::move(e->message));
  return ListRequest{std::move(*coll), std::move(std::get<query::Query>(q))};
}

Decoded<GetRequest> decode_get(const json::object& cmd) {
  auto coll = collection_field(cmd);
  if (!coll) return bad(need_coll);
  auto* d = cmd.if_contains("doc");
  if (!d || !d->is_string()) return bad("\"doc\" must be a string (the id)");
  return GetRequest{std::move(*coll), std::string(d->get_string())};
}

Decoded<WriteRequest> decode_write(json::object& cmd, WriteOp op) {
  WriteRequest r;
  r.op = op;
  auto coll = collection_field(cmd);
  if (!coll) return bad(need_coll);
  r.coll = std::move(*coll);
  if (auto* d = cmd.if_contains("doc")) {
    if (!d->is_string()) return bad("\"doc\" must be a string (the id)");
    r.doc = std::string(d->get_string());
  } else if (op != WriteOp::create) {
    return bad("\"doc\" (the document id) is required");
  }
  if (op != WriteOp::remove) {
    auto* data = cmd.if_contains("data");
    if (!data || !data->is_object()) return bad("\"data\" must be an object");
    r.data = std::move(data->get_object());
  }
  if (!read_uint(cmd, "v", r.v)) return bad("\"v\" must be a non-negative integer");
  if (!key_field(cmd, r.key)) return bad(need_key);
  if (!seq_field(cmd, r.key, r.seq)) return bad(need_seq);
  return r;
}

Decoded<AuthRequest> decode_auth(const json::object& cmd) {
  auto* token = cmd.if_contains("token");
  if (!token || !token->is_string()) return bad("\"token\" must be a string");
  return AuthRequest{std::string(token->get_string())};
}

Decoded<HelloRequest> decode_hello(const json::object& cmd) {
  HelloRequest r;
  const auto* c = cmd.if_contains("client");
  const auto valid = [](std::string_view id) {
    return id.size() >= 16 && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char ch) {
             return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
           });
  };
  if (!c || !c->is_string() || !valid(c->get_string()))
    return bad("\"client\" must be a string of 16-64 characters of A-Za-z0-9_-");
  r.client = std::string(c->get_string());
  std::optional<std::uint64_t> settled;
  if (!read_uint(cmd, "settled", settled) || (settled && *settled > max_seq))
    return bad("\"settled\" must be an integer from 0 to 2^53-1");
  r.settled = settled.value_or(0);
  return r;
}

Decoded<RpcRequest> decode_rpc(json::object& cmd) {
  RpcRequest r;
  const auto* m = cmd.if_contains("method");
  const auto valid = [](std::string_view name) {
    return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char ch) {
             return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || ch == '.' || ch == ':' || ch == '/';
           });
  };
  if (!m || !m->is_string() || !valid(m->get_string()))
    return bad("\"method\" must be a string of 1-128 characters of A-Za-z0-9_.:/-");
  r.method = std::string(m->get_string());
  if (auto* data = cmd.if_contains("data")) r.data = std::move(*data);
  return r;
}

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

bool valid_key(std::string_view key) { return !key.empty() && key.size() <= max_key; }

}  // namespace rtsync::protocol
