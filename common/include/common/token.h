#pragma once
// Session tokens, issued by account-service and verified locally by every gateway with the cluster's
// token keys. Two formats:
//   v2.<key id>.<base64url(user_id:device_id:expires_s:session_id:token_gen)>.<base64url(HMAC-SHA256)>
//      (issued today; tokens from before sessions lack the last two fields and name no session)
//   v1.<base64url(user_id:device_id:expires_s)>.<base64url(HMAC-SHA256)>            (before key ids)
// The MAC covers everything before its dot. A v2 token is verified with the key it names, a v1
// token with the one key marked `legacy_v1`; a token naming no configured key is refused.
// Key rotation (docs/security.md): every key verifies, exactly one signs.
// Thread-safe: immutable after construction.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

struct TokenClaims {
  uint64_t user_id = 0;
  std::string device_id;
  int64_t expires_s = 0;  // unix seconds
  // The account-service session the token belongs to (its row on the user's account shard), and
  // which of that session's tokens it is: a refresh issues generation + 1 and the older ones die.
  // 0 = a token from before sessions, which CheckAccount refuses.
  uint64_t session_id = 0;  // 1..2^63-1
  uint32_t token_gen = 0;   // >= 1 with a session
};

enum class TokenError { kMalformed, kBadSignature, kExpired, kUnknownKey };

struct TokenKey {
  std::string id;          // ValidTokenKeyId
  std::string secret;      // the HMAC key; SecretWeakness (config.h) must find nothing
  bool legacy_v1 = false;  // also verifies v1 tokens (which name no key); at most one key has it
};

// The cluster's token keys: every key verifies, the one named signing_key_id signs.
struct TokenKeys {
  std::vector<TokenKey> keys;
  std::string signing_key_id;

  // The key with this id, or nullptr.
  const TokenKey* Find(std::string_view id) const;
  // One key that signs and verifies (v1 tokens too): for tests and tools.
  static TokenKeys Single(std::string id, std::string secret);
};

class TokenSigner {
 public:
  // `keys` must hold signing_key_id (ParseConfig checks it); a signer without it is a broken
  // invariant and crashes here.
  explicit TokenSigner(TokenKeys keys);
  // Issues a v2 token under the signing key; "" (which never verifies) for claims no token may carry:
  // an invalid device id, a user or session id outside 1..2^63-1, a session with generation 0.
  std::string Issue(const TokenClaims& claims) const;
  // On failure returns nullopt and sets *error (if given).
  std::optional<TokenClaims> Verify(std::string_view token, int64_t now_s, TokenError* error = nullptr) const;

 private:
  const TokenKey& signing() const { return keys_.keys[signing_]; }
  const TokenKey* legacy() const { return legacy_ < 0 ? nullptr : &keys_.keys[static_cast<size_t>(legacy_)]; }

  TokenKeys keys_;
  size_t signing_ = 0;  // index into keys_.keys
  int legacy_ = -1;     // index into keys_.keys of the legacy_v1 key, or -1
};

// HMAC-SHA256 of `data` under `key` (32 raw bytes).
std::string HmacSha256(std::string_view key, std::string_view data);
// SHA-256 of `data` as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view data);

// Key ids are 1..32 chars of [A-Za-z0-9_-] (no dot: the id is one field of a v2 token).
bool ValidTokenKeyId(std::string_view id);
// Device ids are 1..64 chars of [A-Za-z0-9._-].
bool ValidDeviceId(std::string_view device_id);

std::string Base64UrlEncode(std::string_view in);
std::optional<std::string> Base64UrlDecode(std::string_view in);

}  // namespace chat
