#include "store/store_query.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace rtsync::store::detail {
namespace {

using query::Condition;
using query::Op;
using query::OrderKey;
using query::SortKey;

// Bumped whenever an expression below changes, so that an index made by an older build is renamed (and
// made again) rather than silently left unused.
constexpr std::string_view kExpressionsVersion = "1";

std::string literal(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

// The document as json, readable by PostgreSQL's JSON functions: strings holding \u0000 are cut there (an
// even run of backslashes before the escape is escaped backslashes, not the escape's).
constexpr std::string_view kPgDoc =
    R"sql((CASE WHEN strpos(data, '\u0000') = 0 THEN data ELSE regexp_replace(data, '(?<!\\)((?:\\\\)*)\\u0000(?:[^"\\]|\\.)*"', '\1"', 'g') END)::json)sql";

// The expressions of one order key or condition's attribute.
struct Column {
  KeyColumns kind = KeyColumns::triple;
  std::string rank, num, str;  // triple
  std::string col;             // id, owner, v
};

Column column(Dialect d, const std::string& attr) {
  Column c;
  c.kind = key_columns(OrderKey{attr, false});
  switch (c.kind) {
    case KeyColumns::id:
      c.col = "id";
      return c;
    case KeyColumns::owner:
      c.col = d == Dialect::sqlite ? "owner" : R"((owner COLLATE "C"))";
      return c;
    case KeyColumns::v:
      c.col = "v";
      return c;
    case KeyColumns::triple:
      break;
  }
  if (d == Dialect::sqlite) {
    const std::string path = literal("$.\"" + attr + "\"");
    const std::string type = fmt::format("json_type(data, {})", path);
    c.rank = fmt::format(
        "(CASE {} WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3 WHEN 'integer' THEN 4 WHEN 'real' THEN 4 "
        "WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 6 ELSE 0 END)",
        type);
    c.num = fmt::format("(CASE WHEN {} IN ('integer', 'real') THEN json_extract(data, {}) ELSE 0 END)", type, path);
    c.str = fmt::format("(CASE WHEN {} = 'text' THEN json_extract(data, {}) ELSE '' END)", type, path);
  } else {
    const std::string key = literal(attr);
    const std::string value = fmt::format("({} -> {})", kPgDoc, key);
    const std::string text = fmt::format("({} ->> {})", kPgDoc, key);
    c.rank = fmt::format(
        "(CASE json_typeof({0}) WHEN 'null' THEN 1 WHEN 'boolean' THEN (CASE {0}::text WHEN 'true' THEN 3 ELSE 2 END) "
        "WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 6 ELSE 0 END)",
        value);
    c.num = fmt::format("(CASE WHEN json_typeof({}) = 'number' THEN {}::numeric ELSE 0 END)", value, text);
    c.str = fmt::format(R"(((CASE WHEN json_typeof({}) = 'string' THEN {} ELSE '' END) COLLATE "C"))", value, text);
  }
  return c;
}

enum class Cast : std::uint8_t { rank, num, str, count, json };

// Numbers parameters: ?N on SQLite, $N::type on PostgreSQL.
class Binder {
 public:
  Binder(Dialect d, std::vector<SqlValue>& params) : d_(d), params_(params) {}
  std::string add(SqlValue v, Cast cast) {
    params_.push_back(std::move(v));
    const std::size_t n = params_.size();
    if (d_ == Dialect::sqlite) return fmt::format("?{}", n);
    switch (cast) {
      case Cast::rank:
        return fmt::format("${}::int", n);
      case Cast::num:
        return fmt::format("${}::numeric", n);
      case Cast::count:
        return fmt::format("${}::bigint", n);
      case Cast::json:
        return fmt::format("${}::json", n);
      case Cast::str:
        break;
    }
    return fmt::format("${}::text", n);
  }

 private:
  Dialect d_;
  std::vector<SqlValue>& params_;
};

SqlValue num_value(const boost::json::value& num) {
  if (num.is_int64()) return num.get_int64();
  return num.to_number<double>();
}

constexpr std::string_view kFalse = "(1 = 0)";
constexpr std::string_view kTrue = "(1 = 1)";

// `col` equals the scalar whose key is `x`.
std::string equal_sql(const Column& col, const SortKey& x, Binder& b) {
  switch (col.kind) {
    case KeyColumns::id:
    case KeyColumns::owner:
      if (x.rank != query::kString) return std::string(kFalse);
      return fmt::format("{} = {}", col.col, b.add(x.str, Cast::str));
    case KeyColumns::v:
      if (x.rank != query::kNumber) return std::string(kFalse);
      return fmt::format("{} = {}", col.col, b.add(num_value(x.num), Cast::num));
    case KeyColumns::triple:
      break;
  }
  if (x.rank == query::kNumber) {
    return fmt::format("({} = 4 AND {} = {} AND {} = '')", col.rank, col.num, b.add(num_value(x.num), Cast::num),
                       col.str);
  }
  if (x.rank == query::kString) {
    return fmt::format("({} = 5 AND {} = 0 AND {} = {})", col.rank, col.num, col.str, b.add(x.str, Cast::str));
  }
  // null, false, true: the whole key, so that an index's next columns still serve an order.
  return fmt::format("({} = {} AND {} = 0 AND {} = '')", col.rank, x.rank, col.num, col.str);
}

std::string range_sql(const Column& col, std::string_view op, const SortKey& x, Binder& b) {
  const bool number = x.rank == query::kNumber;
  switch (col.kind) {
    case KeyColumns::id:
    case KeyColumns::owner:
      if (number) return std::string(kFalse);
      return fmt::format("{} {} {}", col.col, op, b.add(x.str, Cast::str));
    case KeyColumns::v:
      if (!number) return std::string(kFalse);
      return fmt::format("{} {} {}", col.col, op, b.add(num_value(x.num), Cast::num));
    case KeyColumns::triple:
      break;
  }
  if (number) return fmt::format("({} = 4 AND {} {} {})", col.rank, col.num, op, b.add(num_value(x.num), Cast::num));
  return fmt::format("({} = 5 AND {} = 0 AND {} {} {})", col.rank, col.num, col.str, op, b.add(x.str, Cast::str));
}

std::string condition_sql(Dialect d, const Condition& c, Binder& b) {
  const Column col = column(d, c.attr);
  const auto key = [&](std::size_t i) { return query::sort_key(&c.values.at(i)); };
  switch (c.op) {
    case Op::eq:
      return equal_sql(col, key(0), b);
    case Op::ne: {
      const std::string eq = equal_sql(col, key(0), b);
      if (col.kind != KeyColumns::triple) return fmt::format("NOT ({})", eq);
      return fmt::format("({} > 0 AND NOT ({}))", col.rank, eq);
    }
    case Op::lt:
      return range_sql(col, "<", key(0), b);
    case Op::lte:
      return range_sql(col, "<=", key(0), b);
    case Op::gt:
      return range_sql(col, ">", key(0), b);
    case Op::gte:
      return range_sql(col, ">=", key(0), b);
    case Op::in: {
      if (c.values.empty()) return std::string(kFalse);
      std::string out = "(";
      for (std::size_t i = 0; i < c.values.size(); ++i) {
        if (i) out += " OR ";
        out += equal_sql(col, key(i), b);
      }
      return out + ")";
    }
    case Op::exists: {
      const bool want = c.values.at(0).as_bool();
      if (col.kind != KeyColumns::triple) return std::string(want ? kTrue : kFalse);
      return fmt::format("{} {}", col.rank, want ? "> 0" : "= 0");
    }
  }
  return std::string(kFalse);
}

// One component of an order's sort key: an expression, its direction and how a cursor value binds.
struct Component {
  std::string expr;
  bool desc = false;
  Cast cast = Cast::str;
};

std::vector<Component> components(Dialect d, const query::Order& order) {
  std::vector<Component> out;
  for (const auto& k : order) {
    Column c = column(d, k.attr);
    switch (c.kind) {
      case KeyColumns::triple:
        out.push_back({std::move(c.rank), k.desc, Cast::rank});
        out.push_back({std::move(c.num), k.desc, Cast::num});
        out.push_back({std::move(c.str), k.desc, Cast::str});
        break;
      case KeyColumns::v:
        out.push_back({std::move(c.col), k.desc, Cast::num});
        break;
      case KeyColumns::id:
      case KeyColumns::owner:
        out.push_back({std::move(c.col), k.desc, Cast::str});
        break;
    }
  }
  return out;
}

// The cursor's values, one per component; `ranks` gets the rank of each component's key.
std::vector<SqlValue> component_values(const query::Order& order, const query::Keys& keys, std::vector<int>& ranks) {
  std::vector<SqlValue> out;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const SortKey& k = keys.at(i);
    switch (key_columns(order[i])) {
      case KeyColumns::triple:
        out.emplace_back(std::int64_t{k.rank});
        out.push_back(num_value(k.num));
        out.emplace_back(k.str);
        break;
      case KeyColumns::v:
        out.push_back(num_value(k.num));
        break;
      case KeyColumns::id:
      case KeyColumns::owner:
        out.emplace_back(k.str);
        break;
    }
    ranks.resize(out.size(), k.rank);
  }
  return out;
}

// Rows after the cursor, as disjoint ranges in sort order: branch j holds the rows whose first j
// components equal the cursor's and whose next one is past it. Each is an equality prefix and one
// inequality, which an index over the components serves as one seek (a single lexicographic comparison
// would not be: neither SQLite nor a change of direction lets an index range start at a row value). A
// branch that cannot hold a row is left out: within one rank, num is constant unless the rank is a number
// and str unless it is a string.
struct Branch {
  std::string condition;
  std::vector<SqlValue> params;  // the query's, then the branch's
  std::size_t fixed = 0;         // leading components the condition fixes by equality
};
std::vector<Branch> after_branches(Dialect d, const std::vector<Component>& comps, const std::vector<SqlValue>& values,
                                   const std::vector<int>& ranks, const std::vector<SqlValue>& base) {
  std::vector<Branch> out;
  for (std::size_t j = comps.size(); j-- > 0;) {
    if (comps[j].cast == Cast::num && ranks[j] != query::kNumber && j > 0 && comps[j - 1].cast == Cast::rank) continue;
    if (comps[j].cast == Cast::str && ranks[j] != query::kString && j > 1 && comps[j - 2].cast == Cast::rank) continue;
    Branch br;
    br.params = base;
    br.fixed = j;
    Binder b(d, br.params);
    for (std::size_t i = 0; i < j; ++i) {
      br.condition += fmt::format("{} = {} AND ", comps[i].expr, b.add(values.at(i), comps[i].cast));
    }
    br.condition += fmt::format("{} {} {}", comps[j].expr, comps[j].desc ? "<" : ">", b.add(values.at(j), comps[j].cast));
    out.push_back(std::move(br));
  }
  return out;
}

std::string order_by(const std::vector<Component>& comps) {
  std::string out;
  for (const auto& c : comps) {
    if (!out.empty()) out += ", ";
    out += c.expr;
    if (c.desc) out += " DESC";
  }
  return out;
}

}  // namespace

std::string sql_text(const SqlValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  return std::get<std::string>(v);
}

KeyColumns key_columns(const query::OrderKey& k) {
  if (k.attr == "id") return KeyColumns::id;
  if (k.attr == "_owner") return KeyColumns::owner;
  if (k.attr == "_v") return KeyColumns::v;
  return KeyColumns::triple;
}

std::size_t column_count(KeyColumns k) { return k == KeyColumns::triple ? 3 : 1; }

std::string id_in(Dialect d, const std::string& placeholder) {
  if (d == Dialect::sqlite) return "id IN (SELECT value FROM json_each(" + placeholder + "))";
  return "id IN (SELECT json_array_elements_text(" + placeholder + R"() COLLATE "C"))";
}

ListSql list_sql(Dialect d, const ListQuery& q, const std::string& excluded) {
  ListSql out;
  const query::Order& order = q.query.order;
  const std::vector<Component> comps = components(d, order);
  for (const auto& k : order) out.keys.push_back(key_columns(k));

  std::vector<SqlValue> base_params;
  Binder base(d, base_params);
  std::string where = "collection = " + literal(q.collection);
  if (!q.owner.empty()) where += " AND owner = " + base.add(q.owner, Cast::str);
  for (const auto& c : q.query.where) where += " AND " + condition_sql(d, c, base);
  if (!excluded.empty()) where += " AND NOT " + id_in(d, base.add(excluded, Cast::json));

  std::string select;
  for (std::size_t i = 0; i < comps.size(); ++i) select += fmt::format(", {} AS k{}", comps[i].expr, i);
  std::string outer_cols;
  for (std::size_t i = 0; i < comps.size(); ++i) outer_cols += fmt::format(", k{}", i);
  // `fixed`: how many leading components the part's condition fixes by equality; they are left out of
  // its ORDER BY (SQLite would sort rather than see that an index still serves it).
  const auto part = [&](const std::string& extra, std::vector<SqlValue> params, std::size_t fixed) {
    const std::string sort = order_by({comps.begin() + static_cast<std::ptrdiff_t>(fixed), comps.end()});
    std::string outer_sort;
    for (std::size_t i = fixed; i < comps.size(); ++i) {
      outer_sort += fmt::format("{}k{}{}", i > fixed ? ", " : "", i, comps[i].desc ? " DESC" : "");
    }
    Binder b(d, params);
    const std::string cond = extra.empty() ? where : where + " AND " + extra;
    const std::string limit = b.add(std::int64_t{0}, Cast::count);
    params.pop_back();  // the caller's
    ListSql::Part p;
    p.params = std::move(params);
    if (d == Dialect::sqlite) {
      p.text = fmt::format("SELECT data{} FROM docs WHERE {} ORDER BY {} LIMIT {}", select, cond, sort, limit);
    } else {
      // PostgreSQL sends every row of a result at once: rows past the byte cut stay on the server, but the
      // first of them (its preceding bytes are within the cut), so the reader sees that the page is cut.
      p.text = fmt::format(
          "SELECT data{} FROM (SELECT data{}, sum(octet_length(data)) OVER (ORDER BY {} ROWS BETWEEN UNBOUNDED "
          "PRECEDING AND CURRENT ROW) AS page_bytes FROM docs WHERE {} ORDER BY {} LIMIT {}) page "
          "WHERE page_bytes - octet_length(data) <= {} ORDER BY {}",
          outer_cols, select, sort, cond, sort, limit, query::kMaxPageBytes, outer_sort);
    }
    out.parts.push_back(std::move(p));
  };
  if (!q.query.after) {
    part("", base_params, 0);
    return out;
  }
  std::vector<int> ranks;
  const std::vector<SqlValue> values = component_values(order, q.query.after->keys, ranks);
  for (auto& br : after_branches(d, comps, values, ranks, base_params)) part(br.condition, std::move(br.params), br.fixed);
  return out;
}

IndexSql index_sql(Dialect d, const std::string& collection, const query::Order& order) {
  std::string spec = std::string(kExpressionsVersion) + '\n' + collection;
  for (const auto& k : order) spec += std::string("\n") + (k.desc ? "-" : "") + k.attr;
  IndexSql out;
  out.name = std::string(kIndexPrefix) + query::short_hash(spec);
  std::string cols;
  for (const auto& c : components(d, order)) {
    if (!cols.empty()) cols += ", ";
    cols += "(" + c.expr + ")";
    if (c.desc) cols += " DESC";
  }
  out.create = fmt::format("CREATE INDEX IF NOT EXISTS {} ON docs({}) WHERE collection = {}", out.name, cols,
                           literal(collection));
  return out;
}

bool wanted_index(const std::vector<IndexSql>& wanted, const std::string& name) {
  return std::any_of(wanted.begin(), wanted.end(), [&](const IndexSql& i) { return i.name == name; });
}

std::vector<IndexSql> index_sqls(Dialect d, const QueryIndexes& indexes) {
  std::vector<IndexSql> out;
  for (const auto& [collection, orders] : indexes) {
    for (const auto& o : orders) out.push_back(index_sql(d, collection, query::normalize(o)));
  }
  return out;
}

}  // namespace rtsync::store::detail
