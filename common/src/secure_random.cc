#include "common/secure_random.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace chat {

uint64_t RandomU64() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) throw std::runtime_error("CSPRNG failure");
  return v;
}

std::string RandomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  while (out.size() < digits) {
    uint64_t r = RandomU64();
    for (int i = 0; i < 16 && out.size() < digits; ++i, r >>= 4) out += kHex[r & 0xF];
  }
  return out;
}

}  // namespace chat
