// PubNub's subscribe filter language: a tokenizer, a recursive-descent parser into a flat node list, and
// the evaluator. See pubnub_filter.hpp for the language.
#include "query/pubnub_filter.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace rtsync::query {

namespace {

// ---- Tokens --------------------------------------------------------------------------------------

enum class Tok : std::uint8_t { end, lparen, rparen, comma, dot, lbracket, rbracket, op, word, string, number };

struct Token {
  Tok kind = Tok::end;
  std::string text;  // op: its spelling; word: as written; string: unescaped (but `\*` kept); number: as written
  std::size_t at = 0;
};

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

bool tokenize(std::string_view s, std::vector<Token>& out, std::string& error) {
  std::size_t i = 0;
  auto fail = [&](std::string why) {
    error = why + " at " + std::to_string(i);
    return false;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.at = i;
    auto two = [&](std::string_view op) { return s.substr(i, 2) == op; };
    if (c == '(' || c == ')' || c == ',' || c == '.' || c == '[' || c == ']') {
      t.kind = c == '(' ? Tok::lparen : c == ')' ? Tok::rparen : c == ',' ? Tok::comma : c == '.' ? Tok::dot
             : c == '[' ? Tok::lbracket : Tok::rbracket;
      ++i;
    } else if (two("==") || two("!=") || two("<=") || two(">=") || two("&&") || two("||")) {
      t.kind = Tok::op;
      t.text = s.substr(i, 2);
      i += 2;
    } else if (c == '<' || c == '>' || c == '!') {
      t.kind = Tok::op;
      t.text = std::string(1, c);
      ++i;
    } else if (c == '\'' || c == '"') {
      t.kind = Tok::string;
      for (++i;; ++i) {
        if (i >= s.size()) return fail("unterminated string");
        if (s[i] == c) break;
        if (s[i] == '\\' && i + 1 < s.size()) {
          const char n = s[i + 1];
          if (n == '\'' || n == '"' || n == '\\') {
            t.text += n;
          } else {
            t.text += '\\';  // `\*` (and anything else) stays for LIKE to read
            t.text += n;
          }
          ++i;
          continue;
        }
        t.text += s[i];
      }
      ++i;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '-' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      t.kind = Tok::number;
      const std::size_t start = i++;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                              s[i] == 'E' || ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E'))))
        ++i;
      t.text = s.substr(start, i - start);
    } else if (word_char(c)) {
      t.kind = Tok::word;
      const std::size_t start = i;
      while (i < s.size() && word_char(s[i])) ++i;
      t.text = s.substr(start, i - start);
    } else {
      return fail(std::string("unexpected '") + c + "'");
    }
    out.push_back(std::move(t));
  }
  out.push_back(Token{Tok::end, {}, s.size()});
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A number literal, or a string that holds one exactly (no spaces, nothing after it).
std::optional<double> as_number(std::string_view s) {
  if (s.empty() || s.front() == '+' || std::isspace(static_cast<unsigned char>(s.front()))) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

// ---- Parser --------------------------------------------------------------------------------------

class FilterParser {
 public:
  FilterParser(std::vector<Token> toks, PubnubFilter& f) : t_(std::move(toks)), f_(f) {}

  bool run(std::string& error) {
    auto root = expr(0);
    if (root && peek().kind != Tok::end) root = fail("unexpected '" + peek().text + "'");
    if (!root) {
      error = error_;
      return false;
    }
    f_.root_ = *root;
    return true;
  }

 private:
  using Index = std::optional<std::uint32_t>;
  using Op = PubnubFilter::Op;

  const Token& peek() const { return t_[pos_]; }
  bool is_op(std::string_view op) const { return peek().kind == Tok::op && peek().text == op; }
  Index fail(std::string why) {
    if (error_.empty()) error_ = why + " at " + std::to_string(peek().at);
    return std::nullopt;
  }
  bool failed(std::string why) {
    fail(std::move(why));
    return false;
  }
  std::uint32_t node(Op op, std::uint32_t a, std::uint32_t b = 0) {
    f_.nodes_.push_back(PubnubFilter::Node{op, a, b});
    return static_cast<std::uint32_t>(f_.nodes_.size() - 1);
  }

  Index expr(std::size_t depth) {
    auto left = conjunction(depth);
    while (left && is_op("||")) {
      ++pos_;
      auto right = conjunction(depth);
      if (!right) return right;
      left = node(Op::or_, *left, *right);
    }
    return left;
  }

  Index conjunction(std::size_t depth) {
    auto left = unary(depth);
    while (left && is_op("&&")) {
      ++pos_;
      auto right = unary(depth);
      if (!right) return right;
      left = node(Op::and_, *left, *right);
    }
    return left;
  }

  Index unary(std::size_t depth) {
    if (depth >= kMaxFilterDepth) return fail("too deeply nested");
    if (is_op("!")) {
      ++pos_;
      auto inner = unary(depth + 1);
      if (!inner) return inner;
      return node(Op::not_, *inner);
    }
    if (peek().kind == Tok::lparen) {
      // "(" opens either a comparison's operand (a list, or a parenthesized operand) or a group: try the
      // first, and fall back to the second.
      const std::size_t start = pos_;
      const std::size_t nodes = f_.nodes_.size();
      const std::size_t operands = f_.operands_.size();
      const std::string error = error_;
      if (auto c = comparison(depth)) return c;
      pos_ = start;
      f_.nodes_.resize(nodes);
      f_.operands_.resize(operands);
      error_ = error;
      ++pos_;
      auto inner = expr(depth + 1);
      if (!inner) return inner;
      if (peek().kind != Tok::rparen) return fail("expected ')'");
      ++pos_;
      return inner;
    }
    return comparison(depth);
  }

  Index comparison(std::size_t depth) {
    auto left = operand(depth);
    if (!left) return left;
    Op op;
    const Token& t = peek();
    if (t.kind == Tok::op && t.text == "==") op = Op::eq;
    else if (t.kind == Tok::op && t.text == "!=") op = Op::ne;
    else if (t.kind == Tok::op && t.text == "<") op = Op::lt;
    else if (t.kind == Tok::op && t.text == ">") op = Op::gt;
    else if (t.kind == Tok::op && t.text == "<=") op = Op::le;
    else if (t.kind == Tok::op && t.text == ">=") op = Op::ge;
    else if (t.kind == Tok::word && iequals(t.text, "like")) op = Op::like;
    else if (t.kind == Tok::word && iequals(t.text, "contains")) op = Op::contains;
    else return fail("expected a comparison operator (==, !=, <, >, <=, >=, LIKE, CONTAINS)");
    ++pos_;
    auto right = operand(depth);
    if (!right) return right;
    return node(op, *left, *right);
  }

  // An operand, stored in operands_; returns its index.
  Index operand(std::size_t depth) {
    PubnubFilter::Operand o;
    const Token& t = peek();
    if (t.kind == Tok::lparen) {
      if (depth >= kMaxFilterDepth) return fail("too deeply nested");
      ++pos_;
      std::vector<PubnubFilter::Operand> items;
      for (;;) {
        auto item = operand(depth + 1);
        if (!item) return item;
        items.push_back(f_.operands_[*item]);
        f_.operands_.pop_back();
        if (peek().kind == Tok::comma) {
          ++pos_;
          continue;
        }
        if (peek().kind != Tok::rparen) return fail("expected ',' or ')'");
        ++pos_;
        break;
      }
      if (items.size() == 1) {
        o = std::move(items.front());
      } else {
        o.kind = PubnubFilter::Operand::Kind::list;
        for (auto& item : items) {
          if (item.kind != PubnubFilter::Operand::Kind::literal) return fail("a list holds literals only");
          o.values.push_back(std::move(item.values.front()));
        }
      }
    } else if (t.kind == Tok::string) {
      o.values.emplace_back(json::string(t.text));
      ++pos_;
    } else if (t.kind == Tok::number) {
      auto v = as_number(t.text);
      if (!v) return fail("malformed number '" + t.text + "'");
      o.values.emplace_back(*v);
      ++pos_;
    } else if (t.kind == Tok::word && (t.text == "true" || t.text == "false")) {
      o.values.emplace_back(t.text == "true");
      ++pos_;
    } else if (t.kind == Tok::word && t.text == "null") {
      o.values.emplace_back(nullptr);
      ++pos_;
    } else if (t.kind == Tok::word) {
      if (!path(o)) return std::nullopt;
    } else {
      return fail(t.kind == Tok::end ? std::string("unexpected end") : "unexpected '" + t.text + "'");
    }
    f_.operands_.push_back(std::move(o));
    return static_cast<std::uint32_t>(f_.operands_.size() - 1);
  }

  bool path(PubnubFilter::Operand& o) {
    o.kind = PubnubFilter::Operand::Kind::path;
    const std::string first = peek().text;
    ++pos_;
    if (!f_.objects_ && (first == "meta" || first == "data")) {
      o.data = first == "data";
    } else {
      o.steps.emplace_back(json::string(first));  // PubNub's first syntax: a key of meta
    }
    for (;;) {
      if (peek().kind == Tok::dot) {
        ++pos_;
        if (peek().kind != Tok::word) return failed("expected a name after '.'");
        o.steps.emplace_back(json::string(peek().text));
        ++pos_;
      } else if (peek().kind == Tok::lbracket) {
        ++pos_;
        const Token& key = peek();
        if (key.kind == Tok::string) {
          o.steps.emplace_back(json::string(key.text));
        } else if (key.kind == Tok::number && key.text.find_first_not_of("0123456789") == std::string::npos) {
          o.steps.emplace_back(std::strtoull(key.text.c_str(), nullptr, 10));
        } else {
          return failed("expected a string or an index in '[ ]'");
        }
        ++pos_;
        if (peek().kind != Tok::rbracket) return failed("expected ']'");
        ++pos_;
      } else {
        break;
      }
    }
    (o.data ? f_.reads_data_ : f_.reads_meta_) = true;
    return true;
  }

  std::vector<Token> t_;
  std::size_t pos_ = 0;
  PubnubFilter& f_;
  std::string error_;
};

std::optional<PubnubFilter> PubnubFilter::parse(std::string_view text, std::string& error, Dialect dialect) {
  if (text.size() > kMaxFilterBytes) {
    error = "longer than " + std::to_string(kMaxFilterBytes) + " bytes";
    return std::nullopt;
  }
  std::vector<Token> toks;
  if (!tokenize(text, toks, error)) return std::nullopt;
  PubnubFilter f;
  f.objects_ = dialect == Dialect::objects;
  if (!FilterParser(std::move(toks), f).run(error)) return std::nullopt;
  return f;
}

// ---- Evaluation ----------------------------------------------------------------------------------

namespace {

using Operand = PubnubFilter::Operand;

// A value one side of a comparison stands for: a JSON value, several (a list), or none (a path that does
// not resolve).
struct Side {
  const json::value* one = nullptr;
  const std::vector<json::value>* many = nullptr;
};

Side resolve(const Operand& o, const json::value* meta, const json::value* data) {
  if (o.kind == Operand::Kind::literal) return Side{&o.values.front(), nullptr};
  if (o.kind == Operand::Kind::list) return Side{nullptr, &o.values};
  const json::value* v = o.data ? data : meta;
  for (const auto& step : o.steps) {
    if (!v) break;
    if (step.is_string()) {
      const auto* obj = v->if_object();
      v = obj ? obj->if_contains(step.get_string()) : nullptr;
    } else {
      const auto* arr = v->if_array();
      const auto i = step.to_number<std::uint64_t>();
      v = arr && i < arr->size() ? &(*arr)[static_cast<std::size_t>(i)] : nullptr;
    }
  }
  return Side{v, nullptr};
}

std::optional<double> number_of(const json::value& v) {
  if (v.is_number()) return v.to_number<double>();
  if (v.is_string()) return as_number(v.get_string());
  return std::nullopt;
}

bool equal(const json::value& a, const json::value& b) {
  if ((a.is_number() || b.is_number()) && !(a.is_number() && b.is_number())) {
    auto x = number_of(a);
    auto y = number_of(b);
    return x && y && *x == *y;  // one side a string that holds a number
  }
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  if (a.is_string() && b.is_string()) return a.get_string() == b.get_string();
  if (a.is_bool() && b.is_bool()) return a.get_bool() == b.get_bool();
  return a.is_null() && b.is_null();
}


// An ISO 8601 time ("2024-08-12", "2024-08-12T06:37:16.441347Z", "…T06:37+02:00") in microseconds since
// the Unix epoch; nullopt for anything else. Without a zone it is UTC.
std::optional<std::int64_t> instant_us(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&](std::size_t n, int& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < n; ++k, ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  auto sep = [&](char c) { return i < s.size() && s[i] == c && (++i, true); };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(4, y) || !sep('-') || !digits(2, mo) || !sep('-') || !digits(2, d)) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  std::int64_t micros = 0;
  if (sep('T') || sep(' ')) {
    if (!digits(2, h) || !sep(':') || !digits(2, mi)) return std::nullopt;
    if (sep(':') && !digits(2, sec)) return std::nullopt;
    if (sep('.')) {
      std::int64_t scale = 100000;
      const std::size_t from = i;
      for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, scale /= 10)
        micros += (s[i] - '0') * scale;
      if (i == from) return std::nullopt;
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  }
  std::int64_t offset_s = 0;
  if (sep('Z')) {
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!digits(2, oh) || !sep(':') || !digits(2, om)) return std::nullopt;
    offset_s = sign * (oh * 3600 + om * 60);
  }
  if (i != s.size()) return std::nullopt;
  // Days from the civil date (Howard Hinnant's algorithm).
  const int yy = y - (mo <= 2);
  const int era = yy / 400;
  const int yoe = yy - era * 400;
  const int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  const std::int64_t seconds = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return seconds * 1000000 + micros;
}

// The shortest text of a number, as CONTAINS looks for it in a string: 5 is "5", 2.5 is "2.5".
std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  const double d = v.get_double();
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc{} ? std::string(buf, p) : std::string();
}

bool compare(PubnubFilter::Op op, const Side& a, const Side& b, bool objects) {
  using Op = PubnubFilter::Op;
  // Each side must stand for something (a path that resolves). A list is any of its values for == and !=,
  // the left side of LIKE and CONTAINS, and nothing for the orderings.
  if ((!a.one && !a.many) || (!b.one && !b.many)) return false;
  switch (op) {
    case Op::eq:
    case Op::ne: {
      if (a.many || b.many) {
        const auto& list = a.many ? *a.many : *b.many;
        const json::value* other = a.many ? b.one : a.one;
        const bool in = other && std::any_of(list.begin(), list.end(), [&](const json::value& v) { return equal(v, *other); });
        return op == Op::eq ? in : !in;
      }
      return equal(*a.one, *b.one) == (op == Op::eq);
    }
    case Op::lt:
    case Op::gt:
    case Op::le:
    case Op::ge: {
      if (!a.one || !b.one) return false;
      const auto ordered = [op](auto x, auto y) {
        return op == Op::lt ? x < y : op == Op::gt ? x > y : op == Op::le ? x <= y : x >= y;
      };
      if (objects && a.one->is_string() && b.one->is_string()) {
        const std::string_view x = a.one->get_string(), y = b.one->get_string();
        const auto tx = instant_us(x), ty = instant_us(y);
        if (tx && ty) return ordered(*tx, *ty);
        return ordered(x.compare(y), 0);
      }
      auto x = number_of(*a.one);
      auto y = number_of(*b.one);
      if (!x || !y) return false;
      return ordered(*x, *y);
    }
    case Op::like: {
      if (!b.one || !b.one->is_string()) return false;
      const std::string_view pattern = b.one->get_string();
      auto one = [&](const json::value& v) { return v.is_string() && like(v.get_string(), pattern); };
      if (a.many) return std::any_of(a.many->begin(), a.many->end(), one);
      if (const auto* arr = a.one->if_array()) return std::any_of(arr->begin(), arr->end(), one);
      return one(*a.one);
    }
    case Op::contains: {
      if (!b.one) return false;
      auto member = [&](const json::value& v) { return equal(v, *b.one); };
      if (a.many) return std::any_of(a.many->begin(), a.many->end(), member);
      if (const auto* arr = a.one->if_array()) return std::any_of(arr->begin(), arr->end(), member);
      if (!a.one->is_string()) return false;
      const std::string_view hay = a.one->get_string();
      if (b.one->is_string()) return hay.find(std::string_view(b.one->get_string())) != std::string_view::npos;
      if (b.one->is_number()) return hay.find(number_text(*b.one)) != std::string_view::npos;
      return false;
    }
    default:
      return false;
  }
}

}  // namespace

// Case-insensitive glob: `*` any run, `\*` a literal star. Iterative, with one backtrack point (the last
// star), so it runs in O(text × pattern) at worst.
bool like(std::string_view text, std::string_view pattern) {
  struct P {
    bool star;
    char c;
  };
  std::vector<P> pat;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      pat.push_back(P{false, '*'});
      ++i;
    } else {
      pat.push_back(P{pattern[i] == '*', pattern[i]});
    }
  }
  auto same = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  std::size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pat.size() && !pat[p].star && same(pat[p].c, text[t])) {
      ++t;
      ++p;
    } else if (p < pat.size() && pat[p].star) {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p].star) ++p;
  return p == pat.size();
}

bool PubnubFilter::eval(std::uint32_t n, const json::value* meta, const json::value* data) const {
  const Node& node = nodes_[n];
  switch (node.op) {
    case Op::or_: return eval(node.a, meta, data) || eval(node.b, meta, data);
    case Op::and_: return eval(node.a, meta, data) && eval(node.b, meta, data);
    case Op::not_: return !eval(node.a, meta, data);
    default:
      return compare(node.op, resolve(operands_[node.a], meta, data), resolve(operands_[node.b], meta, data), objects_);
  }
}

bool PubnubFilter::matches(std::string_view meta, std::string_view data) const {
  // Text that is not JSON (it always is: both were validated when published) reads as nothing.
  auto parsed = [](std::string_view text, bool wanted) {
    std::optional<json::value> v;
    if (!wanted || text.empty()) return v;
    boost::system::error_code ec;
    json::value value = json::parse(text, ec);
    if (!ec) v = std::move(value);
    return v;
  };
  const auto m = parsed(meta, reads_meta_);
  const auto d = parsed(data, reads_data_);
  return eval(root_, m ? &*m : nullptr, d ? &*d : nullptr);
}

bool PubnubFilter::matches(const json::value& record) const { return eval(root_, &record, nullptr); }

}  // namespace rtsync::query
