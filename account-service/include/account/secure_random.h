#pragma once
// Randomness for codes, user ids and handles, from OpenSSL's CSPRNG. Thread-safe. Throws
// std::runtime_error if the CSPRNG fails (callers inside handlers catch it).
#include <cstdint>
#include <string>

#include "common/secure_random.h"

namespace chat::account {

using chat::RandomU64;
// Uniform in [0, bound), bound > 0 (rejection sampling, no modulo bias).
uint64_t RandomBelow(uint64_t bound);
// `digits` random decimal digits, e.g. "042917".
std::string RandomDigits(int digits);
// A random positive 63-bit id with ShardOfUser(id, shards) == shard.
uint64_t RandomUserIdOnShard(uint32_t shard, uint32_t shards);
// "u_" + 10 random [a-z0-9].
std::string RandomHandle();

}  // namespace chat::account
