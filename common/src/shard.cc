#include "common/shard.h"

#include <charconv>
#include <climits>

namespace chat {

uint32_t JumpConsistentHash(uint64_t key, uint32_t buckets) {
  if (buckets == 0) return 0;
  int64_t b = -1, j = 0;
  while (j < static_cast<int64_t>(buckets)) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<int64_t>((b + 1) * (static_cast<double>(1LL << 31) / static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t Mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint32_t ShardOfUser(uint64_t user_id, uint32_t shards) { return JumpConsistentHash(Mix64(user_id), shards); }
uint32_t ShardOfGroup(uint64_t group_id, uint32_t shards) {
  return JumpConsistentHash(Mix64(group_id ^ 0x5bd1e995ULL), shards);
}
uint32_t ShardOfConversation(std::string_view id, uint32_t shards) { return JumpConsistentHash(Fnv1a64(id), shards); }

uint32_t ShardOfPhone(std::string_view phone, uint32_t shards) {
  return JumpConsistentHash(Fnv1a64(phone) ^ 0x70686f6e65ULL, shards);
}

uint32_t ShardOfHandle(std::string_view handle_lower, uint32_t shards) {
  return JumpConsistentHash(Fnv1a64(handle_lower) ^ 0x68616e646c65ULL, shards);
}

std::string DirectConversationId(uint64_t a, uint64_t b) {
  if (a > b) std::swap(a, b);
  return "d." + std::to_string(a) + "." + std::to_string(b);
}
std::string GroupConversationId(uint64_t group_id) { return "g." + std::to_string(group_id); }

namespace {
// Canonical decimal: no sign, no leading zeros, non-zero.
bool ParseId(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20 || s[0] == '0') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::optional<ParsedConversation> ParseConversationId(std::string_view id) {
  if (id.size() < 3 || id[1] != '.') return std::nullopt;
  std::string_view rest = id.substr(2);
  if (id[0] == 'g') {
    uint64_t g;
    if (!ParseId(rest, g)) return std::nullopt;
    return ParsedConversation{ParsedConversation::kGroup, g, 0};
  }
  if (id[0] == 'd') {
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    uint64_t a, b;
    if (!ParseId(rest.substr(0, dot), a) || !ParseId(rest.substr(dot + 1), b)) return std::nullopt;
    if (a >= b) return std::nullopt;
    return ParsedConversation{ParsedConversation::kDirect, a, b};
  }
  return std::nullopt;
}

namespace {

// prefix (2 characters) + the id as 16 lowercase hex digits + kRoutedSecretHexChars lowercase hex digits.
constexpr size_t kRoutedSecretHexChars = 32;

std::string RoutedToken(std::string_view prefix, uint64_t id, std::string_view secret_hex) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string t(prefix);
  for (int shift = 60; shift >= 0; shift -= 4) t += kHex[(id >> shift) & 0xF];
  t += secret_hex;
  return t;
}

std::optional<uint64_t> ParseRoutedToken(std::string_view prefix, std::string_view token, std::string* secret_hex) {
  if (token.size() != 2 + 16 + kRoutedSecretHexChars || token.substr(0, 2) != prefix) return std::nullopt;
  uint64_t id = 0;
  for (size_t i = 2; i < token.size(); ++i) {
    const char c = token[i];
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (v < 0) return std::nullopt;
    if (i < 18) id = (id << 4) | static_cast<uint64_t>(v);
  }
  if (id == 0 || id > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  if (secret_hex) secret_hex->assign(token.substr(18));
  return id;
}

}  // namespace

static_assert(kQrSecretHexChars == kRoutedSecretHexChars && kInviteSecretHexChars == kRoutedSecretHexChars);

std::string QrToken(uint64_t user_id, std::string_view secret_hex) { return RoutedToken("q1", user_id, secret_hex); }

std::optional<uint64_t> ParseQrToken(std::string_view token, std::string* secret_hex) {
  return ParseRoutedToken("q1", token, secret_hex);
}

std::string GroupInviteToken(uint64_t route_id, std::string_view secret_hex) {
  return RoutedToken("g1", route_id, secret_hex);
}

std::optional<uint64_t> ParseGroupInviteToken(std::string_view token) { return ParseRoutedToken("g1", token, nullptr); }

}  // namespace chat
