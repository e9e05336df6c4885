// Random identifiers from OpenSSL's CSPRNG: session ids, anonymous user ids, epochs and secrets must not
// be guessable.
#pragma once

#include <cstddef>
#include <string>

namespace rtsync::common {

// `bytes` random bytes as lowercase hex (2 * bytes characters).
std::string random_hex(std::size_t bytes);

}  // namespace rtsync::common
