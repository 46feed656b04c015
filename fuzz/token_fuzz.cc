// The session-token verifier (common/src/token.cc) on arbitrary tokens.
//
// Input: byte 0 picks what is fuzzed; the rest is a token (or the material for one).
// Invariants checked:
//   - a token that verifies was signed by the key: its MAC, recomputed here with OpenSSL alone,
//     matches; the same token under another key does not verify; its claims are in range
//     (user id 1..2^63-1, a valid device id, not expired);
//   - a token issued for any claims verifies to exactly those claims, and fails once expired;
//   - base64url decodes what it encodes.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/token.h"
#include "fuzz_check.h"

namespace {

constexpr std::string_view kSecret = "fuzz-secret-5b0c9e7d2a4f6183c5e7a9b1d3f5e7c9";
constexpr std::string_view kOtherSecret = "fuzz-secret-5b0c9e7d2a4f6183c5e7a9b1d3f5e7c8";
constexpr int64_t kNow = 1'700'000'000;

void VerifyArbitrary(std::string_view token) {
  const chat::TokenSigner signer{chat::TokenKeys::Single("fuzz", std::string(kSecret))};
  chat::TokenError error{};
  auto claims = signer.Verify(token, kNow, &error);
  if (!claims) return;
  const size_t dot = token.rfind('.');
  FUZZ_CHECK(dot != std::string_view::npos);
  auto mac = chat::Base64UrlDecode(token.substr(dot + 1));
  FUZZ_CHECK(mac && *mac == chat::HmacSha256(kSecret, token.substr(0, dot)));
  FUZZ_CHECK(!chat::TokenSigner(chat::TokenKeys::Single("fuzz", std::string(kOtherSecret))).Verify(token, kNow));
  FUZZ_CHECK(claims->user_id >= 1 && claims->user_id <= uint64_t{INT64_MAX});
  FUZZ_CHECK(chat::ValidDeviceId(claims->device_id));
  FUZZ_CHECK(claims->expires_s > kNow);
}

// Claims from the input: 8 bytes of user id, 8 of expiry, the rest the device id.
void IssueAndVerify(std::string_view in) {
  if (in.size() < 16) return;
  chat::TokenClaims c;
  uint64_t expires = 0;
  for (int i = 0; i < 8; ++i) c.user_id = (c.user_id << 8) | uint8_t(in[i]);
  for (int i = 8; i < 16; ++i) expires = (expires << 8) | uint8_t(in[i]);
  c.expires_s = static_cast<int64_t>(expires);
  c.device_id = std::string(in.substr(16));
  const chat::TokenSigner signer{chat::TokenKeys::Single("fuzz", std::string(kSecret))};
  const std::string token = signer.Issue(c);
  auto back = signer.Verify(token, kNow);
  const bool valid = c.user_id >= 1 && c.user_id <= uint64_t{INT64_MAX} && chat::ValidDeviceId(c.device_id);
  if (!valid || token.size() > 512) {
    FUZZ_CHECK(!back);
    return;
  }
  if (c.expires_s <= kNow) {
    chat::TokenError error{};
    FUZZ_CHECK(!signer.Verify(token, kNow, &error) && error == chat::TokenError::kExpired);
    return;
  }
  FUZZ_CHECK(back && back->user_id == c.user_id && back->device_id == c.device_id && back->expires_s == c.expires_s);
  FUZZ_CHECK(!signer.Verify(token, c.expires_s));  // expired at its expiry second
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      VerifyArbitrary(in);
      break;
    case 1:
      IssueAndVerify(in);
      break;
    default: {
      auto back = chat::Base64UrlDecode(chat::Base64UrlEncode(in));
      FUZZ_CHECK(back && *back == in);
      if (auto decoded = chat::Base64UrlDecode(in)) FUZZ_CHECK(chat::Base64UrlEncode(*decoded) == in);
    }
  }
  return 0;
}
