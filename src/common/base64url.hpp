// Base64url without padding (RFC 4648 §5): JWT segments and cookie signatures.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rtsync::common {

std::string base64url_encode(std::string_view bytes);
// nullopt for anything that is not canonical unpadded base64url.
std::optional<std::string> base64url_decode(std::string_view text);

// HMAC-SHA256 of `data` keyed with `key` (32 raw bytes).
std::string hmac_sha256(std::string_view key, std::string_view data);
// Constant-time equality of two byte strings (signature checks).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace rtsync::common
