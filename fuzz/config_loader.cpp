// Fuzz target: the TOML config loader (config::load_string). Any input either loads or is refused with a
// ConfigError (the server then exits 2 naming the key); any other exception, crash or sanitizer report
// is a finding. A config that loads must load again identically (validation is deterministic) and keep
// its documented invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rtsync::config::Config cfg;
  try {
    cfg = rtsync::config::load_string(text, "fuzz.toml");
  } catch (const rtsync::config::ConfigError& e) {
    if (std::string_view(e.what()).substr(0, 10) != "fuzz.toml:") std::abort();  // errors name the file
    return 0;
  }
  if (cfg.limits.max_frame < 125) std::abort();
  if (cfg.server.io_threads > 256) std::abort();
  for (const auto& [name, ns] : cfg.namespaces)
    if (name.empty() || name.size() > 64 || name == "coll" || name == "tally") std::abort();
  (void)rtsync::config::split_listen(cfg.server.listen);  // validated at load: must not throw now
  return 0;
}
