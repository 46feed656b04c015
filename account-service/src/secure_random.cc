#include "account/secure_random.h"

#include "common/shard.h"

namespace chat::account {

uint64_t RandomBelow(uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;  // values >= limit would bias
  for (;;) {
    uint64_t v = RandomU64();
    if (v < limit) return v % bound;
  }
}

std::string RandomDigits(int digits) {
  std::string out;
  out.reserve(digits);
  for (int i = 0; i < digits; ++i) out += static_cast<char>('0' + RandomBelow(10));
  return out;
}

uint64_t RandomUserIdOnShard(uint32_t shard, uint32_t shards) {
  // Each draw lands on `shard` with probability 1/shards, so this ends quickly.
  for (;;) {
    uint64_t id = RandomU64() & 0x7FFFFFFFFFFFFFFFULL;
    if (id == 0) continue;
    if (shards <= 1 || ShardOfUser(id, shards) == shard) return id;
  }
}

std::string RandomHandle() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string h = "u_";
  for (int i = 0; i < 10; ++i) h += kAlphabet[RandomBelow(36)];
  return h;
}

}  // namespace chat::account
