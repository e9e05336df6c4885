// The bus messages of the Redis broker, to and from bytes. See bus_codec.hpp for the format.
#include "broker/bus_codec.hpp"

#include <charconv>
#include <memory>
#include <type_traits>
#include <utility>

namespace rtsync::broker::bus {

namespace {

void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}
void put(std::string& out, std::uint64_t v) { put(out, std::to_string(v)); }
void put(std::string& out, std::int64_t v) { put(out, std::to_string(v)); }

// A publication's fields after its channel: a committed one (P) carries its offset and audience, a transient
// (S) neither; each ends with what only it has (P: prev and expires, S: unstored).
void put(std::string& out, const core::Publication& p, bool committed) {
  if (committed) put(out, p.offset);
  put(out, p.tt);
  put(out, p.ts);
  put(out, p.from);
  if (committed) put(out, p.audience);
  put(out, p.uuid);
  put(out, p.meta);
  put(out, p.ctype);
  put(out, p.data);
  if (committed) {
    put(out, p.prev);
    put(out, p.expires);
    put(out, static_cast<std::uint64_t>(p.pn_event));
  } else {
    put(out, std::string_view(p.unstored ? "1" : "0"));
    put(out, static_cast<std::uint64_t>(p.pn_event));
  }
}

class Fields {
 public:
  explicit Fields(std::string_view s) : s_(s) {}
  bool next(std::string_view& f) {
    auto colon = s_.find(':');
    if (colon == std::string_view::npos) return false;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(s_.data(), s_.data() + colon, n);
    if (ec != std::errc{} || p != s_.data() + colon || n > s_.size() - colon - 1) return false;
    f = s_.substr(colon + 1, n);
    s_.remove_prefix(colon + 1 + n);
    return true;
  }
  template <class Int>
    requires std::is_integral_v<Int>
  bool next(Int& v) {
    std::string_view f;
    if (!next(f)) return false;
    auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
    return ec == std::errc{} && p == f.data() + f.size();
  }
  bool next(std::string& s) {
    std::string_view f;
    if (!next(f)) return false;
    s = f;
    return true;
  }
  // What put(out, publication, committed) wrote.
  bool next(core::Publication& p, bool committed) {
    if (!((!committed || next(p.offset)) && next(p.tt) && next(p.ts) && next(p.from) &&
          (!committed || next(p.audience)) && next(p.uuid) && next(p.meta) && next(p.ctype) && next(p.data)))
      return false;
    // A node of an older build sends fewer of the trailing fields; any that is there must be well formed.
    if (!committed) {
      std::string_view unstored;
      if (s_.empty()) return true;
      if (!next(unstored) || (unstored != "0" && unstored != "1")) return false;
      p.unstored = unstored == "1";
      return s_.empty() || next(p.pn_event);
    }
    return (s_.empty() || next(p.prev)) && (s_.empty() || next(p.expires)) && (s_.empty() || next(p.pn_event));
  }

 private:
  std::string_view s_;
};

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};

std::optional<Body> decode_body(std::string_view kind, Fields& f) {
  if (kind == "P" || kind == "S") {
    const bool committed = kind == "P";
    std::string channel;
    auto p = std::make_shared<core::Publication>();
    if (!f.next(channel) || !f.next(*p, committed)) return std::nullopt;
    if (committed) return Publication{std::move(channel), std::move(p)};
    return Signal{std::move(channel), std::move(p)};
  }
  if (kind == "J") {
    Join j;
    core::Member& m = j.member;
    if (!f.next(j.round) || !f.next(j.channel) || !f.next(m.session_no) || !f.next(m.session) || !f.next(m.user) ||
        !f.next(m.info)) {
      return std::nullopt;
    }
    return j;
  }
  if (kind == "L") {
    Leave l;
    if (!f.next(l.channel) || !f.next(l.session_no) || !f.next(l.action)) return std::nullopt;
    if (l.action != "timeout") l.action = "leave";
    return l;
  }
  if (kind == "E") {
    End e;
    if (!f.next(e.round)) return std::nullopt;
    return e;
  }
  if (kind == "D") {
    Erased e;
    if (!f.next(e.channel) || !f.next(e.after) || !f.next(e.until)) return std::nullopt;
    return e;
  }
  if (kind == "H") return Hello{};
  if (kind == "R") return Lost{};
  return std::nullopt;
}

}  // namespace

std::string encode(std::string_view node, const Body& body) {
  std::string out;
  std::visit(Overloaded{
                 [&](const Publication& p) {
                   put(out, "P");
                   put(out, node);
                   put(out, p.channel);
                   put(out, *p.pub, true);
                 },
                 [&](const Signal& s) {
                   put(out, "S");
                   put(out, node);
                   put(out, s.channel);
                   put(out, *s.signal, false);
                 },
                 [&](const Join& j) {
                   put(out, "J");
                   put(out, node);
                   put(out, j.round);
                   put(out, j.channel);
                   put(out, j.member.session_no);
                   put(out, j.member.session);
                   put(out, j.member.user);
                   put(out, j.member.info);
                 },
                 [&](const Leave& l) {
                   put(out, "L");
                   put(out, node);
                   put(out, l.channel);
                   put(out, l.session_no);
                   put(out, l.action);
                 },
                 [&](const End& e) {
                   put(out, "E");
                   put(out, node);
                   put(out, e.round);
                 },
                 [&](const Hello&) {
                   put(out, "H");
                   put(out, node);
                 },
                 [&](const Lost&) {
                   put(out, "R");
                   put(out, node);
                 },
                 [&](const Erased& e) {
                   put(out, "D");
                   put(out, node);
                   put(out, e.channel);
                   put(out, e.after);
                   put(out, e.until);
                 },
             },
             body);
  return out;
}

std::optional<Message> decode(std::string_view bytes) {
  Fields f(bytes);
  std::string_view kind;
  Message m;
  if (!f.next(kind) || !f.next(m.node)) return std::nullopt;
  auto body = decode_body(kind, f);
  if (!body) return std::nullopt;
  m.body = std::move(*body);
  return m;
}

std::string presence_field(std::string_view channel, std::uint64_t session_no) {
  std::string f(channel);
  f += '\n';
  f += std::to_string(session_no);
  return f;
}

std::string presence_value(const core::Member& m) {
  std::string v;
  put(v, m.session);
  put(v, m.user);
  put(v, m.info);
  return v;
}

}  // namespace rtsync::broker::bus
