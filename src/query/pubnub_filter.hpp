// PubNub's subscribe filter language (the SDK's `filterExpression`, sent as `filter-expr` on subscribe;
// docs/pubnub.md, *Filter expressions*): a subscriber's condition on each message's `meta` (and payload),
// evaluated by the server, which answers only the messages that pass. Pure: text in, a matcher out, JSON
// only. The long poll (server/pubnub_subscribe.cpp) parses the request's expression once and asks
// matches() of every message it would answer.
//
// The language, as PubNub documents it:
//   expr     := or ;  or := and ('||' and)* ;  and := unary ('&&' unary)*
//   unary    := '!' unary | '(' expr ')' | operand OP operand
//   OP       := == != < > <= >= LIKE CONTAINS   (the two words in any case)
//   operand  := path | 'string' | "string" | number | true | false | null | '(' operand (',' operand)* ')'
//   path     := meta.NAME… | data.NAME… | NAME…, each step .NAME or ["NAME"] or [N]
// A path starting with `meta.` reads the publish's `meta`, one starting with `data.` the message itself;
// any other name is a key of `meta` (PubNub's first syntax: `uuid != 'me'`). `meta` and `data` alone are
// the whole values. `&&` binds tighter than `||`; `!` tightest.
//
// Semantics (PubNub's where it says, the least surprising otherwise):
// - A path that does not resolve (no meta, no such key) makes its comparison false, `!=` included: a
//   message must carry what a filter asks about.
// - `==` / `!=` compare numbers by value (a string holding a number compares as that number with a
//   number), strings byte for byte, true/false/null with themselves; different kinds are not equal.
// - `<` `>` `<=` `>=` hold only between numbers (or strings that hold numbers).
// - `a LIKE p`: the string a matches pattern p, case-insensitively (ASCII); `*` is any run of characters
//   and `\*` a literal one. A list or an array on the left matches when one of its strings does.
// - `a CONTAINS b`: a string holds b as a substring (b a string, or a number in its shortest form); a list
//   or an array holds an element equal to b (as `==` says).
// Arithmetic (+ - * / % ^ & | ~), which PubNub's first language had, is not supported: a parse error.
//
// App Context's `filter` (getAllUUIDMetadata, getMemberships, …; docs/pubnub.md 7.6) is the same language
// over a record as served (`name`, `custom.team`, `channel.name`, `updated`, …), with two differences
// (Dialect::objects): every path is a key of the record (`meta` and `data` are not special), and the
// orderings also hold between two strings: as instants when both are ISO 8601 times (`updated >=
// "2024-01-01"`), else byte for byte.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::query {

namespace json = boost::json;

// Limits of one expression: longer or deeper ones are refused like malformed ones.
inline constexpr std::size_t kMaxFilterBytes = 4096;
inline constexpr std::size_t kMaxFilterDepth = 32;  // nested parentheses and `!`

enum class Dialect : std::uint8_t { subscribe, objects };

class PubnubFilter {
 public:
  // The expression, or nullopt with `error` saying where it went wrong.
  static std::optional<PubnubFilter> parse(std::string_view text, std::string& error,
                                           Dialect dialect = Dialect::subscribe);

  // Whether a message passes: `meta` is the publish's meta as compact JSON text (empty: none), `data` the
  // message's JSON text. Either is parsed only if the expression reads it.
  bool matches(std::string_view meta, std::string_view data) const;
  // Dialect::objects: whether a record (an App Context object as served) passes.
  bool matches(const json::value& record) const;

  // One side of a comparison.
  struct Operand {
    enum class Kind : std::uint8_t { path, literal, list } kind = Kind::literal;
    bool data = false;                 // path: from the message, else from meta
    std::vector<json::value> steps;    // path: object keys (strings) and array indexes (numbers)
    std::vector<json::value> values;   // literal: one; list: several literals
  };
  enum class Op : std::uint8_t { or_, and_, not_, eq, ne, lt, gt, le, ge, like, contains };
  // or_/and_: a and b are nodes; not_: a is; a comparison: a and b are operands.
  struct Node {
    Op op = Op::eq;
    std::uint32_t a = 0;
    std::uint32_t b = 0;
  };

 private:
  friend class FilterParser;

  bool eval(std::uint32_t node, const json::value* meta, const json::value* data) const;

  std::vector<Node> nodes_;
  std::vector<Operand> operands_;
  std::uint32_t root_ = 0;
  bool objects_ = false;  // Dialect::objects
  bool reads_meta_ = false;
  bool reads_data_ = false;
};

// `*` is any run of characters, `\*` a literal star, every other character itself, ASCII letters in any
// case: LIKE's patterns.
bool like(std::string_view text, std::string_view pattern);

}  // namespace rtsync::query
