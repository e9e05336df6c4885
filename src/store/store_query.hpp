// Collection queries as SQL (docs/protocol.md, section 6, *Queries*), for both backends: a ListQuery
// becomes one SELECT, and a configured index one CREATE INDEX over the very expressions the SELECT uses,
// so the planner can match them. Internal to src/store.
//
// Each queried attribute `a` has three expressions, its sort key (query.hpp), NULL-free:
//   rank: 0 missing, 1 null, 2 false, 3 true, 4 number, 5 string, 6 array or object
//   num:  the number, else 0          str: the string (up to a U+0000), else ''
// SQLite reads them with json_type/json_extract(data, '$."a"') (strings compare BINARY: bytes);
// PostgreSQL with json_typeof/->/->> on data::json (strings COLLATE "C": bytes; numbers numeric). docs.data
// is text on PostgreSQL, and json cannot process a document holding \u0000 (nor can jsonb store one), so
// there a document with one is read with each such string cut at it, as SQLite's json_extract cuts it.
// "id", "_owner" and "_v" use their columns. The attribute name is written into the SQL as a literal
// (so that index expressions match: query::check_name keeps it safe), and so is the collection name (a
// partial index's predicate must appear literally in the query); values are bound parameters.
//
// The SELECT: WHERE collection = 'NAME' [AND owner = ?] AND <conditions> [AND <a keyset branch>]
// ORDER BY <each key's rank, num, str [DESC]>, id LIMIT n. Conditions compile to equalities on the
// (rank, num, str) prefix where they can (string eq: rank = 5 AND num = 0 AND str = ?), so an index over
// them serves an equality and an order at once; the rows after a cursor are read branch by branch
// (ListSql), each an equality prefix of the sort key and one inequality.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "query/query.hpp"
#include "store/store.hpp"

namespace rtsync::store::detail {

enum class Dialect : std::uint8_t { sqlite, postgres };

// A bound parameter. PostgreSQL receives them as text; the SQL casts them (::int, ::numeric, ::text).
using SqlValue = std::variant<std::int64_t, double, std::string>;
std::string sql_text(const SqlValue& v);  // PostgreSQL's text form of a parameter

// How to read one order key's columns in a result row (after `data`).
enum class KeyColumns : std::uint8_t {
  triple,  // an attribute: rank (integer), num (number), str (text)
  id,      // the id column: rank 5, str = id
  owner,   // the owner column: rank 5, str = owner
  v,       // the v column: rank 4, num = v
};
KeyColumns key_columns(const query::OrderKey& k);
std::size_t column_count(KeyColumns k);  // 3 or 1

// A result row's sort keys (its columns after data), read through the backend's accessors:
// integer(col) -> int64, number(col) -> a json::value holding an int64 or a double, text(col) -> string.
template <class Integer, class Number, class Text>
query::Keys row_keys(const std::vector<KeyColumns>& keys, Integer&& integer, Number&& number, Text&& text) {
  query::Keys out;
  int col = 1;
  for (const KeyColumns k : keys) {
    query::SortKey key;
    switch (k) {
      case KeyColumns::triple:
        key.rank = static_cast<int>(integer(col));
        key.num = number(col + 1);
        key.str = text(col + 2);
        break;
      case KeyColumns::id:
      case KeyColumns::owner:
        key.rank = query::kString;
        key.str = text(col);
        break;
      case KeyColumns::v:
        key.rank = query::kNumber;
        key.num = integer(col);
        break;
    }
    col += static_cast<int>(column_count(k));
    out.push_back(std::move(key));
  }
  return out;
}

// A page's statements, run in order until the page is full (each bound to its params, then to the number
// of rows still wanted, limit + 1 in all: a next page exists when they all come). The first page is one
// statement; a page after a cursor one per branch of the keyset (rows past the cursor in the first
// component that differs), so that an index serves each as a seek.
struct ListSql {
  struct Part {
    std::string text;
    std::vector<SqlValue> params;  // ?1… / $1…; then the row limit, the last parameter
  };
  std::vector<Part> parts;
  std::vector<KeyColumns> keys;  // the row's columns after data: one entry per order key
};
// q.query.order must be normalized. `excluded`: a JSON array of ids to leave out (the documents changed
// since a cursor's offset, store_paging.hpp), or empty. On PostgreSQL each statement also drops the rows
// past the byte cut but one (so the reader sees that the page was cut).
ListSql list_sql(Dialect d, const ListQuery& q, const std::string& excluded = {});
// `id IN (the ids of the JSON array at placeholder)`, in the dialect.
std::string id_in(Dialect d, const std::string& placeholder);

// Query indexes: partial indexes on docs WHERE collection = 'NAME' over an order's expressions, named
// kIndexPrefix + a hash of the collection, the order and the expressions' version.
inline constexpr std::string_view kIndexPrefix = "rtsync_q_";
struct IndexSql {
  std::string name;
  std::string create;  // CREATE INDEX IF NOT EXISTS …
};
IndexSql index_sql(Dialect d, const std::string& collection, const query::Order& order);
std::vector<IndexSql> index_sqls(Dialect d, const QueryIndexes& indexes);
// Whether an existing query index (by name) is among the wanted ones.
bool wanted_index(const std::vector<IndexSql>& wanted, const std::string& name);

// A small least-recently-used map from SQL text to a prepared statement (SQLite: the statement;
// PostgreSQL: its name). Queries vary in shape, so they are prepared on first use and the oldest shape is
// let go past kStatementCacheSize.
inline constexpr std::size_t kStatementCacheSize = 64;
template <class V>
class StatementCache {
 public:
  // The statement of `sql`, now the most recently used; nullptr when not cached.
  V* find(const std::string& sql) {
    const auto it = index_.find(sql);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }
  // Caches a statement; returns the one it evicts, if any (for the caller to release).
  std::optional<V> insert(const std::string& sql, V v) {
    entries_.emplace_front(sql, std::move(v));
    index_[sql] = entries_.begin();
    if (entries_.size() <= kStatementCacheSize) return std::nullopt;
    std::optional<V> evicted(std::move(entries_.back().second));
    index_.erase(entries_.back().first);
    entries_.pop_back();
    return evicted;
  }
  void clear() {
    index_.clear();
    entries_.clear();
  }

 private:
  std::list<std::pair<std::string, V>> entries_;  // most recent first
  std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
};

}  // namespace rtsync::store::detail
