#include "common/ip_range.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace chat {

std::optional<IpRange> ParseIpRange(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  IpRange r;
  if (inet_pton(AF_INET, addr.c_str(), r.bytes.data()) == 1) {
    r.family = 4;
  } else if (inet_pton(AF_INET6, addr.c_str(), r.bytes.data()) == 1) {
    r.family = 6;
  } else {
    return std::nullopt;
  }
  const int max_bits = r.family == 4 ? 32 : 128;
  r.prefix_bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    if (bits.empty() || bits.size() > 3 || (bits.size() > 1 && bits[0] == '0')) return std::nullopt;
    int v = 0;
    for (char c : bits) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    if (v > max_bits) return std::nullopt;
    r.prefix_bits = v;
  }
  for (int bit = r.prefix_bits; bit < max_bits; ++bit)
    if (r.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  return r;
}

bool RangeContains(const IpRange& range, const uint8_t* address, size_t size) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (size == 16 && range.family == 4 && std::memcmp(address, kMapped, 12) == 0) {
    address += 12;
    size = 4;
  }
  if (size != (range.family == 4 ? 4u : 16u)) return false;
  const int full = range.prefix_bits / 8;
  if (std::memcmp(address, range.bytes.data(), full) != 0) return false;
  const int rest = range.prefix_bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address[full] & mask) == range.bytes[full];
}

}  // namespace chat
