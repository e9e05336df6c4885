// Address parsing with inet_pton. See ip.hpp.
#include "common/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string>

namespace rtsync::common {

namespace {
constexpr std::array<std::uint8_t, 12> kV4Mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}

bool is_v4(const Ip& ip) { return std::memcmp(ip.data(), kV4Mapped.data(), kV4Mapped.size()) == 0; }

std::optional<Ip> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
  const std::string s(text);
  Ip ip{};
  if (::inet_pton(AF_INET, s.c_str(), ip.data() + 12) == 1) {
    std::memcpy(ip.data(), kV4Mapped.data(), kV4Mapped.size());
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), ip.data()) == 1) return ip;
  return std::nullopt;
}

std::optional<IpNetwork> parse_network(std::string_view text) {
  const auto slash = text.find('/');
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const unsigned offset = is_v4(*ip) ? 96 : 0;
  unsigned prefix = 128 - offset;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || prefix > 128 - offset)
      return std::nullopt;
  }
  return IpNetwork{*ip, prefix + offset};
}

bool contains(const IpNetwork& net, const Ip& ip) {
  const unsigned whole = net.prefix / 8, bits = net.prefix % 8;
  if (std::memcmp(net.base.data(), ip.data(), whole) != 0) return false;
  if (bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (net.base[whole] & mask) == (ip[whole] & mask);
}

}  // namespace rtsync::common
