// What every store backend shares besides the seam: the document and tally rules of PROTOCOL §5 that do
// not depend on how rows are kept (attributes, the served document text, which values count, the tally
// JSON), and the limits and windows both backends must agree on. Internal to src/store.
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
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rtsync::store::detail {

namespace json = boost::json;

// PROTOCOL §5: a retry with the same key by the same user within 24 h returns the first result.
inline constexpr std::int64_t kIdempotencyWindowMs = 24LL * 60 * 60 * 1000;
// Expired keys are harmless until then (lookups filter by age), so sweep rarely instead of every batch.
inline constexpr auto kIdempotencySweepEvery = std::chrono::minutes(1);

// The largest document's attributes, as JSON text (PROTOCOL §5 leaves it to us; docs/protocol.md says 64 KiB).
inline constexpr std::size_t kMaxDocument = 64 * 1024;

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

// {"total":N,"counts":{"field":{"value":count}}} with every declared field and value, zeros included.
inline std::string tally_json(std::int64_t total, const TallyCounts& counts, const TallyFields& fields) {
  json::object out_counts;
  for (const auto& [field, values] : fields) {
    json::object per;
    const auto fit = counts.find(field);
    for (const std::int64_t value : values) {
      std::int64_t n = 0;
      if (fit != counts.end()) {
        if (const auto vit = fit->second.find(value); vit != fit->second.end()) n = vit->second;
      }
      per[std::to_string(value)] = n;
    }
    out_counts[field] = std::move(per);
  }
  json::object out;
  out["total"] = total;
  out["counts"] = std::move(out_counts);
  return json::serialize(out);
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

inline std::string coll_channel(const std::string& collection) { return "coll:" + collection; }
inline std::string tally_channel(const std::string& collection) { return "tally:" + collection; }

}  // namespace rtsync::store::detail
