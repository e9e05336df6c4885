// PubNub App Context in the store, once for both backends: the records as served (store_objects.hpp), a
// batch's object and membership writes and token revocations (the Batch members declared in
// store_batch.hpp), and the reads: one object, or a listing filtered, sorted and paged over the backend's
// rows. A listing reads every record it lists from, on the store's thread; its page cursors carry the sort
// keys of the record they follow or precede, so a page after writes starts where the last one ended.
#include "store/store_objects.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "common/base64url.hpp"
#include "common/clock.hpp"
#include "store/store_batch.hpp"

namespace rtsync::store {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 4> kUuidFields{"name", "externalId", "profileUrl", "email"};
constexpr std::array<std::string_view, 2> kChannelFields{"name", "description"};

json::object parse_fields(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

json::value field(const json::object& data, std::string_view key) {
  const auto* v = data.if_contains(key);
  return v ? *v : json::value(nullptr);
}

// The same fields always give the same text (keys sorted, custom's too), so that the etag follows them.
json::object sorted(const json::object& o) {
  std::vector<std::string_view> keys;
  for (const auto& kv : o) keys.push_back(kv.key());
  std::sort(keys.begin(), keys.end());
  json::object out;
  for (auto k : keys) {
    const json::value& v = o.at(k);
    out.emplace(k, v.is_object() ? json::value(sorted(v.as_object())) : v);
  }
  return out;
}

// The stored fields with `fields` applied: null removes one, anything else replaces it.
std::string merged(const std::string& stored, const json::object& fields) {
  json::object data = parse_fields(stored);
  for (const auto& kv : fields) {
    if (kv.value().is_null()) {
      data.erase(kv.key());
    } else {
      data[kv.key()] = kv.value();
    }
  }
  return json::serialize(sorted(data));
}

std::string etag_of(char kind, std::string_view id, std::string_view data) {
  std::string input(1, kind);
  input += id;
  input += '\0';
  input += data;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return common::base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), 12));
}

// Now, as App Context says when a record changed: "2024-08-12T06:37:16.441347Z".
std::string now_iso() {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(us % 1000000));
  return buf;
}

char kind_char(ObjectKind k) { return k == ObjectKind::uuid ? 'u' : 'c'; }

// ---- Listings ------------------------------------------------------------------------------------

// A value of a served record by its path ("name", "custom.team", "channel.name"); null when absent.
json::value at_path(const json::object& record, std::string_view path) {
  const json::object* o = &record;
  for (;;) {
    const auto dot = path.find('.');
    const auto* v = o->if_contains(path.substr(0, dot));
    if (!v) return nullptr;
    if (dot == std::string_view::npos) return *v;
    if (!v->is_object()) return nullptr;
    o = &v->as_object();
    path.remove_prefix(dot + 1);
  }
}

// Sort order of values: null, booleans, numbers, strings; each kind by value.
int rank(const json::value& v) {
  if (v.is_bool()) return 1;
  if (v.is_number()) return 2;
  if (v.is_string()) return 3;
  return 0;
}

int compare_values(const json::value& a, const json::value& b) {
  const int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1: return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
    case 2: {
      const double x = a.to_number<double>(), y = b.to_number<double>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 3: {
      const int c = std::string_view(a.get_string()).compare(std::string_view(b.get_string()));
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    default: return 0;
  }
}

struct Order {
  std::vector<std::pair<std::string, bool>> keys;  // the query's sort, then the record's id ascending

  json::array keys_of(const json::object& record) const {
    json::array out;
    for (const auto& [path, desc] : keys) out.push_back(at_path(record, path));
    return out;
  }
  int compare(const json::array& a, const json::array& b) const {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const int c = compare_values(a[i], b[i]);
      if (c != 0) return keys[i].second ? -c : c;
    }
    return 0;
  }
};

std::string cursor_text(const json::array& keys) { return common::base64url_encode(json::serialize(keys)); }

std::optional<json::array> parse_cursor(const std::string& text, std::size_t size) {
  auto raw = common::base64url_decode(text);
  if (!raw) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec || !v.is_array() || v.as_array().size() != size) return std::nullopt;
  return std::move(v.as_array());
}

std::string_view id_path(ObjectQuery::Of of) {
  return of == ObjectQuery::Of::memberships ? "channel.id" : of == ObjectQuery::Of::members ? "uuid.id" : "id";
}

}  // namespace

bool known_field(ObjectKind kind, std::string_view f) {
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), f) != list.end(); };
  return kind == ObjectKind::uuid ? in(kUuidFields) : in(kChannelFields);
}

json::object without_nulls(json::object record) {
  for (auto it = record.begin(); it != record.end();) {
    if (it->value().is_null()) {
      it = record.erase(it);
      continue;
    }
    if (it->value().is_object()) it->value() = without_nulls(std::move(it->value().as_object()));
    ++it;
  }
  return record;
}

json::object served_object(ObjectKind kind, const AppObject& o) {
  const json::object data = parse_fields(o.data);
  json::object out;
  out["id"] = o.id;
  if (kind == ObjectKind::uuid) {
    for (auto f : kUuidFields) out[f] = field(data, f);
  } else {
    for (auto f : kChannelFields) out[f] = field(data, f);
  }
  for (auto f : {"custom", "status", "type"}) out[f] = field(data, f);
  out["updated"] = o.updated;
  out["eTag"] = o.etag;
  return out;
}

json::object served_membership(const Membership& m, bool of_uuid, const std::optional<AppObject>& other) {
  const json::object data = parse_fields(m.data);
  json::object out;
  const char* side = of_uuid ? "channel" : "uuid";
  if (other) {
    out[side] = served_object(of_uuid ? ObjectKind::channel : ObjectKind::uuid, *other);
  } else {
    out[side] = json::object{{"id", of_uuid ? m.channel : m.uuid}};
  }
  for (auto f : {"custom", "status", "type"}) out[f] = field(data, f);
  out["updated"] = m.updated;
  out["eTag"] = m.etag;
  return out;
}

namespace detail {

ObjectWriteResult Batch::write_object(const ObjectWrite& w) {
  ObjectWriteResult r;
  auto stored = rows_.find_object(w.kind, w.id);
  if (w.remove) {
    r.ok = true;
    if (stored) {
      rows_.delete_object(w.kind, w.id);
      r.changed = true;
      r.object = std::move(*stored);
    }
    return r;
  }
  if (!w.if_match.empty() && (!stored || stored->etag != w.if_match)) {
    r.mismatch = true;
    return r;
  }
  AppObject o;
  o.id = w.id;
  o.data = merged(stored ? stored->data : "{}", w.fields);
  if (stored && stored->data == o.data) {
    r.ok = true;
    r.object = std::move(*stored);
    return r;
  }
  o.updated = now_iso();
  o.etag = etag_of(kind_char(w.kind), o.id, o.data);
  rows_.put_object(w.kind, o);
  r.ok = r.changed = true;
  r.object = std::move(o);
  return r;
}

MembershipWriteResult Batch::write_memberships(const MembershipWrite& w) {
  MembershipWriteResult r;
  for (const auto& [uuid, channel] : w.remove) {
    if (auto found = rows_.find_membership(uuid, channel)) {
      rows_.delete_membership(uuid, channel);
      r.removed.push_back(std::move(*found));
    }
  }
  for (const auto& change : w.set) {
    auto stored = rows_.find_membership(change.uuid, change.channel);
    Membership m;
    m.uuid = change.uuid;
    m.channel = change.channel;
    m.data = merged(stored ? stored->data : "{}", change.fields);
    if (stored && stored->data == m.data) continue;
    m.updated = now_iso();
    m.etag = etag_of('m', m.uuid + '\0' + m.channel, m.data);
    rows_.put_membership(m);
    r.changed.push_back(std::move(m));
  }
  r.ok = true;
  return r;
}

RevocationResult Batch::revoke(const TokenRevocation& t) {
  rows_.sweep_revocations(now_);
  if (t.expires >= now_) rows_.insert_revocation(t);
  RevocationResult r;
  r.ok = true;
  return r;
}

RevocationsResult read_revocations(Rows& rows) {
  RevocationsResult r;
  r.tokens = rows.revocations(common::now_ms());
  r.ok = true;
  return r;
}

ObjectsResult read_objects(Rows& rows, const ObjectQuery& q) {
  using Of = ObjectQuery::Of;
  ObjectsResult r;
  if (q.of == Of::uuid || q.of == Of::channel) {
    const ObjectKind kind = q.of == Of::uuid ? ObjectKind::uuid : ObjectKind::channel;
    if (auto o = rows.find_object(kind, q.id)) r.records.push_back(served_object(kind, *o));
    r.total = r.records.size();
    r.ok = true;
    return r;
  }

  std::vector<json::object> all;
  const auto offer = [&](json::object record) {
    if (!q.filter || q.filter->matches(json::value(without_nulls(record)))) all.push_back(std::move(record));
  };
  if (q.of == Of::uuids || q.of == Of::channels) {
    const ObjectKind kind = q.of == Of::uuids ? ObjectKind::uuid : ObjectKind::channel;
    rows.each_object(kind, [&](AppObject o) {
      if (!q.visible || q.visible(o.id)) offer(served_object(kind, o));
    });
  } else {
    const bool of_uuid = q.of == Of::memberships;
    rows.each_membership(of_uuid, q.id, [&](Membership m, std::optional<AppObject> other) {
      offer(served_membership(m, of_uuid, other));
    });
  }

  Order order{q.sort};
  order.keys.emplace_back(id_path(q.of), false);
  std::vector<json::array> keys;
  keys.reserve(all.size());
  for (const auto& record : all) keys.push_back(order.keys_of(record));
  std::vector<std::size_t> idx(all.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return order.compare(keys[a], keys[b]) < 0; });

  // The page: after `start`, else before `end`, else from the first.
  std::size_t from = 0, until = std::min(q.limit, idx.size());
  const auto bound = [&](const std::string& text, bool after) -> std::optional<std::size_t> {
    auto cursor = parse_cursor(text, order.keys.size());
    if (!cursor) return std::nullopt;
    const auto it = std::partition_point(idx.begin(), idx.end(), [&](std::size_t i) {
      const int c = order.compare(keys[i], *cursor);
      return after ? c <= 0 : c < 0;
    });
    return static_cast<std::size_t>(it - idx.begin());
  };
  if (!q.start.empty() || !q.end.empty()) {
    const bool after = !q.start.empty();
    auto at = bound(after ? q.start : q.end, after);
    if (!at) {
      r.bad_cursor = true;
      return r;
    }
    from = after ? *at : *at - std::min(*at, q.limit);
    until = after ? std::min(*at + q.limit, idx.size()) : *at;
  }
  for (std::size_t i = from; i < until; ++i) r.records.push_back(std::move(all[idx[i]]));
  if (until > from) {
    if (until < idx.size()) r.next = cursor_text(keys[idx[until - 1]]);
    if (from > 0) r.prev = cursor_text(keys[idx[from]]);
  }
  r.total = idx.size();
  r.ok = true;
  return r;
}

}  // namespace detail
}  // namespace rtsync::store
