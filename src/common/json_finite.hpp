// Boost.JSON (1.81) parses a number beyond the range of a double (`1e400`) as ±infinity and serializes it
// back as `Infinity`, which is not JSON: one such number in a publication or a document would make every
// reader's JSON parser fail on it. Every JSON text from a client is therefore checked with this before use.
#pragma once

#include <boost/json/value.hpp>

#include <cmath>
#include <vector>

namespace rtsync::common {

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
