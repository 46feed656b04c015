#pragma once
// Session tokens: "v1.<base64url(user_id:device_id:expires_s)>.<base64url(HMAC-SHA256)>".
// Issued by account-service, verified locally by every gateway with the shared cluster secret.
// Thread-safe: immutable after construction.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chat {

struct TokenClaims {
  uint64_t user_id = 0;
  std::string device_id;
  int64_t expires_s = 0;  // unix seconds
};

enum class TokenError { kMalformed, kBadSignature, kExpired };

class TokenSigner {
 public:
  explicit TokenSigner(std::string secret) : secret_(std::move(secret)) {}
  std::string Issue(const TokenClaims& claims) const;
  // On failure returns nullopt and sets *error (if given).
  std::optional<TokenClaims> Verify(std::string_view token, int64_t now_s, TokenError* error = nullptr) const;

 private:
  std::string Mac(std::string_view data) const;
  std::string secret_;
};

// Device ids are 1..64 chars of [A-Za-z0-9._-].
bool ValidDeviceId(std::string_view device_id);

std::string Base64UrlEncode(std::string_view in);
std::optional<std::string> Base64UrlDecode(std::string_view in);

}  // namespace chat
