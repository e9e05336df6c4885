// The query language of collection `list` (docs/protocol.md, section 6, *Queries*): which documents
// (`where`), in which order (`order`), how many (`limit`) and from where (`after`, the opaque cursor of
// the previous page). This layer knows only JSON: it decodes a request into a Query with precise error
// messages, matches a document against a Where in C++, compares documents in an order, and encodes and
// decodes cursors. The stores (src/store/store_query.*) compile the same Query to SQL; the two agree
// exactly (tests/unit/store_query_test.cpp compares them on random documents), so a live view can
// filter and sort change-feed documents here the way `list` does in the database.
//
// The rules, in one place:
// - A document is the object as served: its attributes plus "id", "_v" and "_owner".
// - Each attribute has a sort key (rank, num, str), total and without nulls: a missing attribute ranks 0,
//   null 1, false 2, true 3, a number 4 (num = its value), a string 5 (str = its UTF-8 bytes, up to its
//   first U+0000 if any), an array or an object 6 (all equal to each other). num is 0 and str "" unless
//   set. Numbers compare by value across integers and fractions (1 == 1.0).
// - `eq x` holds when the attribute's key equals x's key (so null matches a present null only); `ne x`
//   when the attribute exists and its key differs; a range (lt, lte, gt, gte) with a number holds only
//   for numbers, with a string only for strings; `in` is eq of any listed value; `exists`.
// - An order sorts by each key's sort key (descending with "-"), then by id: ties never remain.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rtsync::query {

namespace json = boost::json;

// Limits of one query (docs/protocol.md).
inline constexpr std::size_t kMaxConditions = 16;  // operators in `where`, each counted (an `in` is one)
inline constexpr std::size_t kMaxInValues = 100;   // values of one `in`
inline constexpr std::size_t kMaxOrderKeys = 8;    // names in `order` (and in one configured index)
inline constexpr std::size_t kMaxNameBytes = 256;  // bytes of an attribute name
inline constexpr std::size_t kMaxLimit = 1000;     // documents per page, and the default
// A page ends before the document that would take the documents' JSON text past this many bytes (but it
// always holds at least one document); `next` is then set.
inline constexpr std::size_t kMaxPageBytes = 512 * 1024;

enum class Op : std::uint8_t { eq, ne, lt, lte, gt, gte, in, exists };
std::string_view op_name(Op op);

// One condition on one attribute ("id", "_owner" and "_v" included).
struct Condition {
  std::string attr;
  Op op = Op::eq;
  // eq, ne: one scalar (null, bool, number, string); lt..gte: one number or string; in: the scalars
  // (none: matches nothing); exists: one bool. Strings are cut at their first U+0000 when decoded.
  std::vector<json::value> values;
};
// Every condition must hold. Decoded wheres are in a canonical order (attr, op, values), so equal
// wheres compile to equal SQL and hash alike.
using Where = std::vector<Condition>;

struct OrderKey {
  std::string attr;
  bool desc = false;
  bool operator==(const OrderKey&) const = default;
};
// Normalized (normalize(), and whatever parse_order returns): no name twice, and it ends with the "id"
// key (appended ascending when the client did not name it; keys after it would never decide).
using Order = std::vector<OrderKey>;

// An attribute's sort key (see above). num holds an int64, a uint64 or a double; 0 when rank != 4.
enum Rank : int { kMissing = 0, kNull = 1, kFalse = 2, kTrue = 3, kNumber = 4, kString = 5, kComposite = 6 };
struct SortKey {
  int rank = kMissing;
  json::value num = 0;
  std::string str;
};
// One per key of a normalized order: a row's position in it (the id key: rank 5, str = the id).
using Keys = std::vector<SortKey>;

// Where a page ends (a decoded `next`). Every page of one paging is placed as of the first page's
// snapshot: the stores read where a document changed since then was at `offset` from coll:NAME's change
// feed (store.hpp, Store::list), so a document that exists and matches throughout comes exactly once.
struct Cursor {
  Keys keys;                 // the last row of the previous page, as of `offset`
  std::uint64_t offset = 0;  // of coll:NAME at the first page
  std::string epoch;         // of coll:NAME then
};

struct Query {
  Where where;
  Order order{{"id", false}};
  std::size_t limit = kMaxLimit;  // 1..kMaxLimit
  std::optional<Cursor> after;    // none: the first page
};

// What is wrong with a request, for a bad_request reply (e.g. `where."n": lt needs a number or a string`).
struct Error {
  std::string message;
};
template <class T>
using Parsed = std::variant<T, Error>;

// The members "where", "order", "limit" and "after" of a list request (others are the caller's); an
// absent or null member takes its default. The cursor is checked against the where and order.
Parsed<Query> parse_query(const json::object& request);
Parsed<Where> parse_where(const json::value& where);
Parsed<Order> parse_order(const json::value& order);  // an array of names, "-name" descending
Parsed<std::size_t> parse_limit(const json::value& limit);
// A cursor that next_cursor() made for this where and order, else an Error ("after: …").
Parsed<Cursor> parse_cursor(std::string_view cursor, const Where& where, const Order& order);

// One order key from its text ("name" or "-name"); also the entries of configured indexes.
Parsed<OrderKey> parse_order_key(std::string_view text);
// Empty when `name` may be queried, else why not: 1-256 bytes without '"', '\' or control characters
// (the stores write names into JSON path literals).
std::string check_name(std::string_view name);
Order normalize(Order order);

// The opaque cursor of the page that follows the row at `at.keys` (base64url of compact JSON holding the
// cursor and a hash of the normalized where and order).
std::string next_cursor(const Where& where, const Order& order, const Cursor& at);
// A short stable hash (16 hex digits) of text: cursors, and the names of configured indexes.
std::string short_hash(std::string_view text);
// The canonical text of a where and an order (what the cursor hash covers).
std::string canonical(const Where& where, const Order& order);

// --- The matcher: documents as served ---

SortKey sort_key(const json::value* v);  // nullptr: the attribute is missing
SortKey sort_key(const json::object& doc, std::string_view attr);
// <0, 0, >0; numbers exactly (an int64 against a double too).
int compare(const SortKey& a, const SortKey& b);
bool matches(const Condition& c, const json::object& doc);
bool matches(const Where& where, const json::object& doc);
Keys sort_keys(const Order& order, const json::object& doc);
// <0 when a row at `a` comes before one at `b` in `order` (desc keys reversed), 0 when equal.
int compare(const Order& order, const Keys& a, const Keys& b);
// Whether `a` sorts before `b` (a strict weak order; a total one over distinct ids).
bool before(const Order& order, const json::object& a, const json::object& b);

}  // namespace rtsync::query
