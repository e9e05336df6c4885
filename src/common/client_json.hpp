// JSON text from clients (publications, documents, commands, PubNub meta, token claims), parsed the same
// way by every front end.
//
// Nesting: at most `max_json_depth` levels of arrays and objects in a value a client provides, counted
// from the value itself (a publication's `data`, a document, a REST body), so a WebSocket command, whose
// envelope is one more level, allows the same data as REST and PubNub (it is parsed with room to spare
// and checked with json_depth, so that the refusal can still name the command's id).
//
// Numbers: Boost.JSON (1.81) parses a number beyond the range of a double (`1e400`) as ±infinity and
// serializes it back as `Infinity`, which is not JSON: one such number in a publication or a document
// would make every reader's JSON parser fail on it. Every parsed value is therefore checked with
// all_numbers_finite before use.
#pragma once

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtsync::common {

inline constexpr std::size_t max_json_depth = 32;

inline boost::json::value parse_client_json(std::string_view text, boost::system::error_code& ec,
                                            std::size_t envelope = 0) {
  boost::json::parse_options opts;
  opts.max_depth = max_json_depth + envelope;
  return boost::json::parse(text, ec, {}, opts);
}

// What to tell a client whose JSON did not parse.
inline std::string client_json_error(const boost::system::error_code& ec) {
  if (ec == boost::json::error::too_deep) return "nested deeper than " + std::to_string(max_json_depth) + " levels";
  return ec.message();
}

// Levels of arrays and objects in `v`: 0 for a scalar, 1 for [] or {"a":1}.
inline std::size_t json_depth(const boost::json::value& v) {
  std::size_t deepest = 0;
  std::vector<std::pair<const boost::json::value*, std::size_t>> todo{{&v, 0}};
  while (!todo.empty()) {
    auto [x, above] = todo.back();
    todo.pop_back();
    if (x->is_array()) {
      deepest = std::max(deepest, above + 1);
      for (const auto& e : x->get_array()) todo.emplace_back(&e, above + 1);
    } else if (x->is_object()) {
      deepest = std::max(deepest, above + 1);
      for (const auto& kv : x->get_object()) todo.emplace_back(&kv.value(), above + 1);
    }
  }
  return deepest;
}

// True when every number in `v` (at any depth) is finite.
inline bool all_numbers_finite(const boost::json::value& v) {
  std::vector<const boost::json::value*> todo{&v};
  while (!todo.empty()) {
    const auto* x = todo.back();
    todo.pop_back();
    switch (x->kind()) {
      case boost::json::kind::double_:
        if (!std::isfinite(x->get_double())) return false;
        break;
      case boost::json::kind::array:
        for (const auto& e : x->get_array()) todo.push_back(&e);
        break;
      case boost::json::kind::object:
        for (const auto& kv : x->get_object()) todo.push_back(&kv.value());
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace rtsync::common
