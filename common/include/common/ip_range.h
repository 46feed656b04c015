#pragma once
// An IP address range written as an address or a CIDR block: "192.0.2.7", "10.0.0.0/8",
// "2001:db8::/32" (a bare address is a /32 or a /128). Pure functions; thread-safe.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace chat {

struct IpRange {
  int family = 4;                   // 4 or 6
  std::array<uint8_t, 16> bytes{};  // the network, host bits zero; IPv4 uses the first 4
  int prefix_bits = 32;             // 0..32 (IPv4) or 0..128 (IPv6)
};

// nullopt unless `text` is an IPv4 or IPv6 address with an optional "/<prefix bits>" in range.
// Host bits set below the prefix are refused ("10.0.0.1/8" is a typo for a host or a network).
std::optional<IpRange> ParseIpRange(std::string_view text);

// `address`: 4 bytes (IPv4) or 16 (IPv6), network order. An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) matches as the IPv4 address it carries.
bool RangeContains(const IpRange& range, const uint8_t* address, size_t size);

}  // namespace chat
