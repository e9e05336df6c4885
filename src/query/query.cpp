#include "query/query.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "common/base64url.hpp"

namespace rtsync::query {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 8> kOps{{{Op::eq, "eq"},
                                                              {Op::ne, "ne"},
                                                              {Op::lt, "lt"},
                                                              {Op::lte, "lte"},
                                                              {Op::gt, "gt"},
                                                              {Op::gte, "gte"},
                                                              {Op::in, "in"},
                                                              {Op::exists, "exists"}}};
constexpr std::string_view kOpList = "eq, ne, lt, lte, gt, gte, in, exists";

// A name as JSON text, for messages: where."a b".
std::string quoted(std::string_view s) { return json::serialize(json::string(s)); }

bool is_scalar(const json::value& v) { return !v.is_array() && !v.is_object(); }
bool is_range_operand(const json::value& v) { return v.is_number() || v.is_string(); }

// Strings compare up to their first U+0000 (what SQLite's json_extract returns), so operands are cut too.
json::value normalized_operand(const json::value& v) {
  if (v.is_string()) {
    const std::string_view s = v.get_string();
    return json::string(s.substr(0, s.find('\0')));
  }
  return v;
}

int sign(bool less, bool greater) { return less ? -1 : (greater ? 1 : 0); }

int compare_int_double(std::int64_t i, double d) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if (d >= kTwo63) return -1;
  if (d < -kTwo63) return 1;
  const double t = std::trunc(d);
  const auto it = static_cast<std::int64_t>(t);
  if (i != it) return sign(i < it, i > it);
  const double frac = d - t;
  return sign(frac > 0, frac < 0);
}

// num holds an int64 or a double (sort_key makes it so).
int compare_num(const json::value& a, const json::value& b) {
  if (a.is_int64() && b.is_int64()) return sign(a.get_int64() < b.get_int64(), a.get_int64() > b.get_int64());
  if (a.is_int64()) return compare_int_double(a.get_int64(), b.to_number<double>());
  if (b.is_int64()) return -compare_int_double(b.get_int64(), a.to_number<double>());
  const double x = a.to_number<double>();
  const double y = b.to_number<double>();
  return sign(x < y, x > y);
}

Error where_error(std::string_view attr, std::string_view what) {
  return Error{fmt::format("where.{}: {}", quoted(attr), what)};
}

// Parses one operator of `attr` into `out`.
std::optional<Error> parse_operator(std::string_view attr, std::string_view name, const json::value& v,
                                    Condition& out) {
  const auto it = std::find_if(kOps.begin(), kOps.end(), [&](const auto& o) { return o.second == name; });
  if (it == kOps.end()) return where_error(attr, fmt::format("{} is not an operator ({})", quoted(name), kOpList));
  out.op = it->first;
  switch (out.op) {
    case Op::eq:
    case Op::ne:
      if (!is_scalar(v)) return where_error(attr, fmt::format("{} needs a scalar (null, true, false, a number or a string)", name));
      out.values.push_back(normalized_operand(v));
      break;
    case Op::lt:
    case Op::lte:
    case Op::gt:
    case Op::gte:
      if (!is_range_operand(v)) return where_error(attr, fmt::format("{} needs a number or a string", name));
      out.values.push_back(normalized_operand(v));
      break;
    case Op::in: {
      const auto* a = v.if_array();
      if (!a) return where_error(attr, "in needs an array of scalars");
      if (a->size() > kMaxInValues) return where_error(attr, fmt::format("in takes at most {} values", kMaxInValues));
      for (const auto& e : *a) {
        if (!is_scalar(e)) return where_error(attr, "in needs an array of scalars");
        out.values.push_back(normalized_operand(e));
      }
      break;
    }
    case Op::exists:
      if (!v.is_bool()) return where_error(attr, "exists needs true or false");
      out.values.push_back(v);
      break;
  }
  return std::nullopt;
}

bool condition_less(const Condition& a, const Condition& b) {
  if (a.attr != b.attr) return a.attr < b.attr;
  if (a.op != b.op) return a.op < b.op;
  return json::serialize(json::array(a.values.begin(), a.values.end())) <
         json::serialize(json::array(b.values.begin(), b.values.end()));
}

json::array key_json(const SortKey& k) { return json::array{k.rank, k.num, json::string(k.str)}; }

}  // namespace

std::string_view op_name(Op op) {
  for (const auto& [o, name] : kOps) {
    if (o == op) return name;
  }
  return "?";
}

std::string check_name(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= kMaxNameBytes &&
                  std::none_of(name.begin(), name.end(), [](char c) {
                    const auto u = static_cast<unsigned char>(c);
                    return c == '"' || c == '\\' || u < 0x20 || u == 0x7f;
                  });
  if (ok) return {};
  return fmt::format("attribute names are 1-{} bytes without '\"', '\\' or control characters", kMaxNameBytes);
}

Parsed<Where> parse_where(const json::value& where) {
  const auto* o = where.if_object();
  if (!o) return Error{"where must be an object"};
  Where out;
  std::size_t count = 0;
  for (const auto& kv : *o) {
    const std::string_view attr = kv.key();
    if (auto e = check_name(attr); !e.empty()) return Error{fmt::format("where: {}: {}", e, quoted(attr))};
    const json::value& v = kv.value();
    if (is_scalar(v)) {
      out.push_back(Condition{std::string(attr), Op::eq, {normalized_operand(v)}});
      ++count;
    } else if (const auto* ops = v.if_object()) {
      if (ops->empty()) return where_error(attr, fmt::format("an operator object needs an operator ({})", kOpList));
      for (const auto& op : *ops) {
        Condition c;
        c.attr = std::string(attr);
        if (auto e = parse_operator(attr, op.key(), op.value(), c)) return *e;
        out.push_back(std::move(c));
        ++count;
      }
    } else {
      return where_error(attr, fmt::format("the value is a scalar (equality) or an operator object ({})", kOpList));
    }
    if (count > kMaxConditions) {
      return Error{fmt::format("where: at most {} conditions (each operator counts as one)", kMaxConditions)};
    }
  }
  std::sort(out.begin(), out.end(), condition_less);
  return out;
}

Parsed<OrderKey> parse_order_key(std::string_view text) {
  OrderKey k;
  if (!text.empty() && text.front() == '-') {
    k.desc = true;
    text.remove_prefix(1);
  }
  if (auto e = check_name(text); !e.empty()) return Error{fmt::format("{}: {}", e, quoted(text))};
  k.attr = std::string(text);
  return k;
}

Order normalize(Order order) {
  Order out;
  for (auto& k : order) {
    if (std::any_of(out.begin(), out.end(), [&](const OrderKey& o) { return o.attr == k.attr; })) continue;
    out.push_back(std::move(k));
    if (out.back().attr == "id") return out;
  }
  out.push_back(OrderKey{"id", false});
  return out;
}

Parsed<Order> parse_order(const json::value& order) {
  constexpr std::string_view kShape = "order must be an array of attribute names (\"-name\" for descending)";
  const auto* a = order.if_array();
  if (!a) return Error{std::string(kShape)};
  if (a->empty()) return Error{"order needs at least one attribute name"};
  if (a->size() > kMaxOrderKeys) return Error{fmt::format("order names at most {} attributes", kMaxOrderKeys)};
  Order out;
  for (const auto& e : *a) {
    if (!e.is_string()) return Error{std::string(kShape)};
    auto k = parse_order_key(e.get_string());
    if (auto* err = std::get_if<Error>(&k)) return Error{"order: " + err->message};
    auto& key = std::get<OrderKey>(k);
    if (std::any_of(out.begin(), out.end(), [&](const OrderKey& o) { return o.attr == key.attr; })) {
      return Error{fmt::format("order names {} twice", quoted(key.attr))};
    }
    out.push_back(std::move(key));
  }
  return normalize(std::move(out));
}

Parsed<std::size_t> parse_limit(const json::value& limit) {
  std::int64_t n = 0;
  if (limit.is_int64()) {
    n = limit.get_int64();
  } else if (limit.is_uint64()) {
    n = std::numeric_limits<std::int64_t>::max();
  } else {
    n = -1;
  }
  if (n < 1 || n > static_cast<std::int64_t>(kMaxLimit)) {
    return Error{fmt::format("limit must be an integer from 1 to {}", kMaxLimit)};
  }
  return static_cast<std::size_t>(n);
}

std::string canonical(const Where& where, const Order& order) {
  json::array w;
  for (const auto& c : where) {
    w.push_back(json::array{json::string(c.attr), json::string(op_name(c.op)),
                            json::array(c.values.begin(), c.values.end())});
  }
  json::array o;
  for (const auto& k : order) o.push_back(json::array{json::string(k.attr), k.desc});
  return json::serialize(json::object{{"w", std::move(w)}, {"o", std::move(o)}});
}

std::string short_hash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::string next_cursor(const Where& where, const Order& order, const Cursor& at) {
  json::array k;
  for (const auto& key : at.keys) k.push_back(key_json(key));
  const json::object c{{"h", short_hash(canonical(where, order))}, {"k", std::move(k)}, {"s", at.offset}, {"e", at.epoch}};
  return common::base64url_encode(json::serialize(c));
}

Parsed<Cursor> parse_cursor(std::string_view cursor, const Where& where, const Order& order) {
  const Error malformed{"after: malformed cursor (pass the next of the previous page as it is)"};
  const auto text = common::base64url_decode(cursor);
  if (!text) return malformed;
  boost::system::error_code ec;
  const json::value v = json::parse(*text, ec);
  const auto* o = v.if_object();
  if (ec || !o) return malformed;
  const auto* h = o->if_contains("h");
  const auto* k = o->if_contains("k");
  const auto* s = o->if_contains("s");
  const auto* ep = o->if_contains("e");
  if (!h || !h->is_string() || !k || !k->is_array() || !s || !(s->is_uint64() || s->is_int64()) || !ep ||
      !ep->is_string()) {
    return malformed;
  }
  if (h->get_string() != short_hash(canonical(where, order))) {
    return Error{"after: the cursor belongs to another where or order"};
  }
  const auto& arr = k->get_array();
  if (arr.size() != order.size()) return malformed;
  Cursor c;
  if (s->is_int64() && s->get_int64() < 0) return malformed;
  c.offset = s->is_uint64() ? s->get_uint64() : static_cast<std::uint64_t>(s->get_int64());
  c.epoch = std::string(ep->get_string());
  Keys& keys = c.keys;
  for (const auto& e : arr) {
    const auto* t = e.if_array();
    if (!t || t->size() != 3 || !(*t)[0].is_int64() || !(*t)[1].is_number() || !(*t)[2].is_string()) return malformed;
    SortKey sk;
    const std::int64_t rank = (*t)[0].get_int64();
    if (rank < kMissing || rank > kComposite) return malformed;
    sk.rank = static_cast<int>(rank);
    sk.num = sort_key(&(*t)[1]).num;
    sk.str = std::string((*t)[2].get_string());
    keys.push_back(std::move(sk));
  }
  return c;
}

Parsed<Query> parse_query(const json::object& request) {
  Query q;
  const auto given = [&](std::string_view name) -> const json::value* {
    const auto* v = request.if_contains(name);
    return v && !v->is_null() ? v : nullptr;
  };
  if (const auto* w = given("where")) {
    auto p = parse_where(*w);
    if (auto* e = std::get_if<Error>(&p)) return *e;
    q.where = std::move(std::get<Where>(p));
  }
  if (const auto* o = given("order")) {
    auto p = parse_order(*o);
    if (auto* e = std::get_if<Error>(&p)) return *e;
    q.order = std::move(std::get<Order>(p));
  }
  if (const auto* l = given("limit")) {
    auto p = parse_limit(*l);
    if (auto* e = std::get_if<Error>(&p)) return *e;
    q.limit = std::get<std::size_t>(p);
  }
  if (const auto* a = given("after")) {
    if (!a->is_string()) return Error{"after must be a string: the next of the previous page"};
    auto p = parse_cursor(a->get_string(), q.where, q.order);
    if (auto* e = std::get_if<Error>(&p)) return *e;
    q.after = std::move(std::get<Cursor>(p));
  }
  return q;
}

// --- The matcher ---

SortKey sort_key(const json::value* v) {
  SortKey k;
  if (!v) return k;
  switch (v->kind()) {
    case json::kind::null:
      k.rank = kNull;
      break;
    case json::kind::bool_:
      k.rank = v->get_bool() ? kTrue : kFalse;
      break;
    case json::kind::int64:
      k.rank = kNumber;
      k.num = v->get_int64();
      break;
    case json::kind::uint64:
      // Beyond int64 SQLite holds an integer as a double; so does the key (PostgreSQL stays exact).
      k.rank = kNumber;
      if (v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        k.num = static_cast<std::int64_t>(v->get_uint64());
      } else {
        k.num = static_cast<double>(v->get_uint64());
      }
      break;
    case json::kind::double_:
      k.rank = kNumber;
      k.num = v->get_double();
      break;
    case json::kind::string: {
      k.rank = kString;
      const std::string_view s = v->get_string();
      k.str = std::string(s.substr(0, s.find('\0')));
      break;
    }
    case json::kind::array:
    case json::kind::object:
      k.rank = kComposite;
      break;
  }
  return k;
}

SortKey sort_key(const json::object& doc, std::string_view attr) { return sort_key(doc.if_contains(attr)); }

int compare(const SortKey& a, const SortKey& b) {
  if (a.rank != b.rank) return sign(a.rank < b.rank, a.rank > b.rank);
  if (const int c = compare_num(a.num, b.num)) return c;
  const int c = a.str.compare(b.str);
  return sign(c < 0, c > 0);
}

bool matches(const Condition& c, const json::object& doc) {
  const SortKey k = sort_key(doc, c.attr);
  const auto equal = [&](const json::value& x) { return compare(k, sort_key(&x)) == 0; };
  const auto range = [&](auto holds) {
    const SortKey x = sort_key(&c.values.at(0));
    return k.rank == x.rank && holds(compare(k, x));
  };
  switch (c.op) {
    case Op::eq:
      return equal(c.values.at(0));
    case Op::ne:
      return k.rank != kMissing && !equal(c.values.at(0));
    case Op::lt:
      return range([](int r) { return r < 0; });
    case Op::lte:
      return range([](int r) { return r <= 0; });
    case Op::gt:
      return range([](int r) { return r > 0; });
    case Op::gte:
      return range([](int r) { return r >= 0; });
    case Op::in:
      return std::any_of(c.values.begin(), c.values.end(), equal);
    case Op::exists:
      return (k.rank != kMissing) == c.values.at(0).as_bool();
  }
  return false;
}

bool matches(const Where& where, const json::object& doc) {
  return std::all_of(where.begin(), where.end(), [&](const Condition& c) { return matches(c, doc); });
}

Keys sort_keys(const Order& order, const json::object& doc) {
  Keys keys;
  keys.reserve(order.size());
  for (const auto& k : order) keys.push_back(sort_key(doc, k.attr));
  return keys;
}

int compare(const Order& order, const Keys& a, const Keys& b) {
  for (std::size_t i = 0; i < order.size() && i < a.size() && i < b.size(); ++i) {
    if (const int c = compare(a[i], b[i])) return order[i].desc ? -c : c;
  }
  return 0;
}

bool before(const Order& order, const json::object& a, const json::object& b) {
  return compare(order, sort_keys(order, a), sort_keys(order, b)) < 0;
}

}  // namespace rtsync::query
