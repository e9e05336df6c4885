// What every store backend shares besides the seam, its queue (store_queue.hpp) and the batch algorithm
// (store_batch.hpp): the document and tally rules of PROTOCOL §5 that do not depend on how rows are kept (a
// write's checks, attributes, the served document text, which values count, the tally JSON), the
// publications a batch makes, and the limits and windows both backends must agree on. Internal to
// src/store.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <openssl/sha.h>

#include "common/random.hpp"
#include "core/publication.hpp"
#include "store/store.hpp"

namespace rtsync::store::detail {

namespace json = boost::json;

// PROTOCOL §5: a retry with the same key by the same user within 24 h returns the first result.
inline constexpr std::int64_t kIdempotencyWindowMs = 24LL * 60 * 60 * 1000;
// Expired keys are harmless until then (lookups filter by age), so sweep rarely instead of every batch.
inline constexpr auto kIdempotencySweepEvery = std::chrono::minutes(1);

// An idempotency key as the store keeps it, in the idempotency table's four spaces (kind): a client's
// `key` for publications (0) and document writes (1), live for kIdempotencyWindowMs; an outbox write's
// (2, 3), named "<client>/<seq in 16 digits>" (so a client's records sort by seq) and live until settled.
struct KeyRef {
  std::string user;
  std::string text;
  bool outbox = false;

  int kind(bool doc) const { return (outbox ? 2 : 0) + (doc ? 1 : 0); }
  // Records made before this are expired (outbox records never are).
  std::int64_t live_since(std::int64_t now) const {
    return outbox ? std::numeric_limits<std::int64_t>::min() : now - kIdempotencyWindowMs;
  }
};
inline std::string outbox_key(const std::string& client, std::uint64_t seq) {
  std::string n = std::to_string(seq);
  return client + '/' + std::string(n.size() < 16 ? 16 - n.size() : 0, '0') + n;
}
// The key of a write (none: not idempotent).
inline std::optional<KeyRef> key_ref(const std::string& user, const std::string& key, const std::optional<Outbox>& outbox) {
  if (outbox) return KeyRef{user, outbox_key(outbox->client, outbox->seq), true};
  if (key.empty()) return std::nullopt;
  return KeyRef{user, key, false};
}

// When a batch sweeps expired keys: once kIdempotencySweepEvery has passed since the last sweep committed.
class SweepSchedule {
 public:
  // Whether the current batch sweeps; call committed() once it committed.
  bool due() {
    now_ = std::chrono::steady_clock::now();
    due_ = now_ - last_ >= kIdempotencySweepEvery;
    return due_;
  }
  void committed() {
    if (due_) last_ = now_;
  }

 private:
  std::chrono::steady_clock::time_point last_{};  // the epoch: the first batch sweeps
  std::chrono::steady_clock::time_point now_{};
  bool due_ = false;
};


using TallyFields = std::map<std::string, std::vector<std::int64_t>>;
// count per (field, value)
using TallyCounts = std::unordered_map<std::string, std::unordered_map<std::int64_t, std::int64_t>>;

inline std::int64_t to_i64(std::uint64_t v) {
  return v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(v);
}

// The server's fields of a document: never attributes, never counted.
inline bool reserved(std::string_view key) { return key == "id" || key == "_v" || key == "_owner"; }

// The attributes of a write or a stored document, in their order, without the server's fields.
inline json::object attributes(const json::object& o) {
  json::object out;
  for (const auto& kv : o) {
    if (!reserved(kv.key())) out.emplace(kv.key(), kv.value());
  }
  return out;
}

inline json::object parse_object(const std::string& text) {
  json::value v = json::parse(text);
  if (!v.is_object()) throw std::runtime_error("stored document is not an object");
  return std::move(v.as_object());
}

// A tally value: an integer that fits in a signed 64-bit column. Anything else counts nowhere.
inline std::optional<std::int64_t> tally_value(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

inline std::string doc_text(const json::object& attrs, const std::string& id, std::uint64_t v,
                            const std::string& owner) {
  json::object doc = attrs;
  doc["id"] = id;
  doc["_v"] = v;
  doc["_owner"] = owner;
  return json::serialize(doc);
}

// The key of the database's epoch salt in its store_info table.
inline constexpr std::string_view kEpochSaltKey = "epoch_salt";

// The epoch of a channel the database has no row for: 64 bits of SHA-256(salt, name), where the salt is
// random per database. Loads never write, yet every load of an unwritten channel, on any node sharing the
// database and across restarts, gives the same epoch, and the first append persists exactly that one: the
// epoch a subscriber got before the first publication is the one after it. Another database (one that was
// lost and recreated) has another salt, so its epochs never repeat an old one.
inline std::string unwritten_epoch(const std::string& salt, std::string_view channel) {
  std::string input = salt;
  input += '\0';
  input += channel;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

// A channel's row as the writer knows it in a batch (SQLite: its cache; PostgreSQL: the row it locked).
struct ChannelState {
  std::int64_t id = 0;
  std::string epoch;
  std::uint64_t last_offset = 0;
  std::uint64_t last_tt = 0;     // timetoken of last_offset
  bool dirty = false;            // published on in the current batch
  std::size_t history_size = 0;  // of the latest publication in the batch: what to trim to
};

// A stored document, as a get and a write's checks read it.
struct StoredDoc {
  std::string owner;
  std::uint64_t v = 0;
  std::string data;
};

// A document write that passed its checks: what to store.
struct PlannedWrite {
  std::string id;
  bool inserts = false;    // a create, or an update that creates (DocWrite::upsert)
  std::uint64_t old_v = 0; // the stored version (none for what it inserts)
  std::string owner;
  std::uint64_t v = 0;     // the version to store; remove: the deleted document's last one
  json::object old_attrs;  // the stored attributes (none for a create)
  json::object new_attrs;  // the attributes to store (none for a remove)
};

// Checks a write against the stored document, which `find(id)` reads (a std::optional<StoredDoc>).
// nullopt: the write changes nothing, and `r` says why (its status, and the current document on a conflict).
template <class Find>
std::optional<PlannedWrite> plan_write(const DocWrite& w, DocResult& r, Find&& find) {
  using Op = DocWrite::Op;
  using Status = DocResult::Status;
  PlannedWrite p;
  p.id = w.id;
  std::optional<StoredDoc> cur;
  if (w.op == Op::create && p.id.empty()) {
    // 64 random bits: a collision is next to impossible, but costs only another draw.
    for (int attempt = 0; attempt < 8; ++attempt) {
      p.id = common::random_hex(8);
      cur = find(p.id);
      if (!cur) break;
    }
  } else {
    cur = find(p.id);
  }

  // `_owner` sent back must be the stored owner (or, for what this write creates, the caller).
  if (w.echo_owner && *w.echo_owner != (cur ? cur->owner : w.user)) {
    r.status = Status::invalid;
    r.error = "\"_owner\" differs from the document's owner, which is set by the server";
    return std::nullopt;
  }
  // v = 0 on an update: create only (REST If-None-Match: *).
  const bool create_only = w.op == Op::update && w.upsert && w.expected_v == 0u;
  const bool creates = w.op == Op::create || (w.op == Op::update && w.upsert && !cur && !w.expected_v) ||
                       (create_only && !cur);
  if (creates || create_only) {
    if (cur) {
      r.status = Status::conflict;
      r.doc = std::move(cur->data);
      return std::nullopt;
    }
    p.inserts = true;
    p.new_attrs = attributes(w.data);
    p.owner = w.user;
    p.v = 1;
  } else {
    if (!cur) {
      // A client that names the version it saw learns that the document is gone (PROTOCOL §5).
      if (w.expected_v) {
        r.status = Status::conflict;
        r.doc = "null";
      } else {
        r.status = Status::not_found;
      }
      return std::nullopt;
    }
    if (w.owner_only && cur->owner != w.user) {
      r.status = Status::permission_denied;
      return std::nullopt;
    }
    if (w.expected_v && *w.expected_v != cur->v) {
      r.status = Status::conflict;
      r.doc = std::move(cur->data);
      return std::nullopt;
    }
    p.old_attrs = attributes(parse_object(cur->data));
    p.old_v = cur->v;
    p.owner = cur->owner;
    if (w.op == Op::update) {
      p.new_attrs = attributes(w.data);
    } else if (w.op == Op::patch) {
      p.new_attrs = p.old_attrs;
      for (const auto& kv : w.data) {
        if (reserved(kv.key())) continue;
        if (kv.value().is_null()) {
          p.new_attrs.stable_erase(kv.key());  // keeps the other attributes in their order
        } else {
          p.new_attrs[kv.key()] = kv.value();
        }
      }
    }
    p.v = w.op == Op::remove ? cur->v : cur->v + 1;
  }
  // A patch can grow a document past the limit the service checked on the data alone.
  if (w.op == Op::patch && json::serialize(p.new_attrs).size() > kMaxDocument) {
    r.status = Status::too_large;
    return std::nullopt;
  }
  return p;
}

// The publication of an append, without its offset and timetoken (assigned in the transaction).
inline std::shared_ptr<core::Publication> append_pub(const AppendRequest& req) {
  auto pub = std::make_shared<core::Publication>();
  pub->data = req.data;
  pub->from = req.from;
  pub->ts = req.ts;
  pub->uuid = req.uuid;
  pub->meta = req.meta;
  pub->ctype = req.ctype;
  pub->expires = req.expires;
  pub->pn_event = req.pn_event;
  return pub;
}

// A write's publication on coll:NAME, without its offset and timetoken: a remove names the document,
// anything else carries it (`doc`, as stored).
inline std::shared_ptr<core::Publication> change_pub(const DocWrite& w, const PlannedWrite& p, const std::string& doc,
                                                     std::int64_t now) {
  auto pub = std::make_shared<core::Publication>();
  if (w.op == DocWrite::Op::remove) {
    json::object c;
    c["type"] = "delete";
    c["id"] = p.id;
    c["_v"] = p.v;
    pub->data = json::serialize(c);
  } else {
    pub->data = R"({"type":"upsert","doc":)" + doc + "}";
  }
  if (!p.inserts) pub->prev = doc_text(p.old_attrs, p.id, p.old_v, p.owner);
  pub->from = w.user;
  pub->ts = now;
  if (w.owner_audience) pub->audience = p.owner;
  return pub;
}

// A collection's tally as a batch knows it.
struct TallyState {
  bool present = false;  // the counts exist in the database (else: not a tally collection, so far)
  std::int64_t total = 0;
  TallyCounts counts;
};

inline std::int64_t count_of(const TallyCounts& counts, const std::string& field, std::int64_t value) {
  const auto fit = counts.find(field);
  if (fit == counts.end()) return 0;
  const auto vit = fit->second.find(value);
  return vit == fit->second.end() ? 0 : vit->second;
}

// {"total":N,"counts":{"field":{"value":count}}} with every declared field and value, zeros included.
inline std::string tally_json(const TallyState& st, const TallyFields& fields) {
  json::object out_counts;
  for (const auto& [field, values] : fields) {
    json::object per;
    for (const std::int64_t value : values) per[std::to_string(value)] = count_of(st.counts, field, value);
    out_counts[field] = std::move(per);
  }
  json::object out;
  out["total"] = st.total;
  out["counts"] = std::move(out_counts);
  return json::serialize(out);
}

// The tally publication of a batch, without its offset and timetoken.
inline std::shared_ptr<core::Publication> tally_pub(const TallyState& st, const TallyFields& fields,
                                                    std::int64_t now) {
  auto pub = std::make_shared<core::Publication>();
  pub->data = tally_json(st, fields);
  pub->ts = now;
  return pub;
}

// A std::unique_ptr deleter calling a C library's free function (sqlite3_finalize, PQclear, ...).
template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

inline std::string coll_channel(const std::string& collection) { return "coll:" + collection; }
inline std::string tally_channel(const std::string& collection) { return "tally:" + collection; }

// One tally the store keeps: a collection's, or one group's (its documents whose `attr` is `group`).
struct TallyKey {
  std::string collection;
  std::string attr;  // empty: the whole collection
  std::string group;

  // Its key in the tally tables: the collection's name, or "NAME:ATTR\x1fGROUP" (a collection name has
  // no ':' and a group no control character, so keys never collide; the attribute is part of the key so
  // that grouping by another attribute never reads these counts).
  std::string row() const { return attr.empty() ? collection : collection + ':' + attr + '\x1f' + group; }
  std::string channel() const { return attr.empty() ? tally_channel(collection) : tally_group_channel(collection, group); }
  bool holds(const json::object& attrs) const;
};

// The group that a document's attributes put it in under `attr`: its value there, when that is a valid
// group name (a document written before the collection was grouped may hold anything).
inline std::optional<std::string> group_of(const json::object& attrs, const std::string& attr) {
  const auto* v = attrs.if_contains(attr);
  if (!v || !v->is_string() || !valid_tally_group(v->get_string())) return std::nullopt;
  return std::string(v->get_string());
}

// The tally a read asks for.
inline TallyKey tally_key(const TallyQuery& q) {
  return q.group_by.empty() ? TallyKey{q.collection, "", ""} : TallyKey{q.collection, q.group_by, q.group};
}

inline bool TallyKey::holds(const json::object& attrs) const {
  if (attr.empty()) return true;
  const auto g = group_of(attrs, attr);
  return g && *g == group;
}

}  // namespace rtsync::store::detail
