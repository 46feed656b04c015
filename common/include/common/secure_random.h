#pragma once
// Randomness for secrets (codes, tokens, ids) from OpenSSL's CSPRNG. Thread-safe. Throws
// std::runtime_error if the CSPRNG fails (callers inside handlers catch it).
#include <cstddef>
#include <cstdint>
#include <string>

namespace chat {

uint64_t RandomU64();
// `digits` random lowercase hex digits.
std::string RandomHex(size_t digits);

}  // namespace chat
