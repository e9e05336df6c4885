// IP addresses and networks as 16 bytes (IPv4 as IPv4-mapped IPv6), for the HTTP rate limiter's keys and
// [server] trusted_proxies, without a socket library.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace rtsync::common {

using Ip = std::array<std::uint8_t, 16>;

struct IpNetwork {
  Ip base{};
  unsigned prefix = 128;  // bits of `base` that must match; an IPv4 /N is stored as /(96+N)
};

// "192.0.2.1" or "2001:db8::1" (no brackets, no port, no zone); nullopt otherwise.
std::optional<Ip> parse_ip(std::string_view text);
// An address (a network of one) or "ADDRESS/PREFIX" with PREFIX up to 32 (IPv4) or 128 (IPv6).
std::optional<IpNetwork> parse_network(std::string_view text);
bool contains(const IpNetwork& net, const Ip& ip);
bool is_v4(const Ip& ip);

}  // namespace rtsync::common
