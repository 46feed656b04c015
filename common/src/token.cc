#include "common/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace chat {

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

template <typename T>
bool ParseNum(std::string_view s, T& out) {
  if (s.empty() || s.size() > 20) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = B64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical tail
  return out;
}

bool ValidDeviceId(std::string_view d) {
  if (d.empty() || d.size() > 64) return false;
  for (char c : d) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool ValidTokenKeyId(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

const TokenKey* TokenKeys::Find(std::string_view id) const {
  for (const auto& k : keys)
    if (k.id == id) return &k;
  return nullptr;
}

TokenKeys TokenKeys::Single(std::string id, std::string secret) {
  TokenKeys k;
  k.signing_key_id = id;
  k.keys.push_back({std::move(id), std::move(secret), /*legacy_v1=*/true});
  return k;
}

TokenSigner::TokenSigner(TokenKeys keys) : keys_(std::move(keys)) {
  const TokenKey* signing = keys_.Find(keys_.signing_key_id);
  if (!signing || !ValidTokenKeyId(signing->id)) {
    std::fprintf(stderr, "token signer: the signing key \"%s\" is not among the token keys\n",
                 keys_.signing_key_id.c_str());
    std::abort();
  }
  signing_ = static_cast<size_t>(signing - keys_.keys.data());
  for (size_t i = 0; i < keys_.keys.size(); ++i)
    if (keys_.keys[i].legacy_v1) legacy_ = static_cast<int>(i);
}

namespace {

// The claims a token may carry: Verify refuses any other as kMalformed, and Issue never signs one (a
// device id with a ':' would otherwise sign different claims than the caller meant).
bool WellFormed(const TokenClaims& c, bool has_session) {
  if (!ValidDeviceId(c.device_id) || c.user_id == 0 || c.user_id > static_cast<uint64_t>(INT64_MAX)) return false;
  if (!has_session) return true;
  return c.session_id != 0 && c.session_id <= static_cast<uint64_t>(INT64_MAX) && c.token_gen != 0;
}

}  // namespace

std::string TokenSigner::Issue(const TokenClaims& c) const {
  if (!WellFormed(c, c.session_id != 0)) return {};
  std::string payload = std::to_string(c.user_id) + ":" + c.device_id + ":" + std::to_string(c.expires_s);
  if (c.session_id != 0) payload += ":" + std::to_string(c.session_id) + ":" + std::to_string(c.token_gen);
  std::string body = "v2." + signing().id + "." + Base64UrlEncode(payload);
  return body + "." + Base64UrlEncode(HmacSha256(signing().secret, body));
}

std::optional<TokenClaims> TokenSigner::Verify(std::string_view token, int64_t now_s, TokenError* error) const {
  auto fail = [&](TokenError e) -> std::optional<TokenClaims> {
    if (error) *error = e;
    return std::nullopt;
  };
  if (token.size() > 512) return fail(TokenError::kMalformed);
  // Structure first (so garbage is kMalformed whatever it names), then the key, then the MAC.
  const auto dot = token.rfind('.');
  if (dot == std::string_view::npos) return fail(TokenError::kMalformed);
  const std::string_view body = token.substr(0, dot);
  std::string_view payload_b64;
  const TokenKey* key = nullptr;
  if (token.substr(0, 3) == "v2.") {
    const auto kid_end = body.find('.', 3);
    if (kid_end == std::string_view::npos) return fail(TokenError::kMalformed);
    const std::string_view kid = body.substr(3, kid_end - 3);
    if (!ValidTokenKeyId(kid)) return fail(TokenError::kMalformed);
    payload_b64 = body.substr(kid_end + 1);
    key = keys_.Find(kid);
  } else if (token.substr(0, 3) == "v1.") {
    payload_b64 = body.size() > 3 ? body.substr(3) : std::string_view();
    key = legacy();
  } else {
    return fail(TokenError::kMalformed);
  }
  if (payload_b64.empty() || payload_b64.find('.') != std::string_view::npos) return fail(TokenError::kMalformed);
  auto mac = Base64UrlDecode(token.substr(dot + 1));
  constexpr size_t kMacBytes = 32;  // HMAC-SHA256: any other length is not a token of ours
  if (!mac || mac->size() != kMacBytes) return fail(TokenError::kMalformed);
  if (!key) return fail(TokenError::kUnknownKey);
  const std::string expected = HmacSha256(key->secret, body);
  if (mac->size() != expected.size() || CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0)
    return fail(TokenError::kBadSignature);
  auto payload = Base64UrlDecode(payload_b64);
  if (!payload) return fail(TokenError::kMalformed);
  // user:device:expires[:session:generation]; a device id holds no ':'.
  std::string_view fields[5];
  size_t n = 0;
  for (std::string_view p = *payload;;) {
    if (n == 5) return fail(TokenError::kMalformed);
    const auto colon = p.find(':');
    fields[n++] = p.substr(0, colon);
    if (colon == std::string_view::npos) break;
    p.remove_prefix(colon + 1);
  }
  if (n != 3 && n != 5) return fail(TokenError::kMalformed);
  TokenClaims claims;
  claims.device_id = std::string(fields[1]);
  // ids are positive 63-bit; no account has a larger one
  if (!ParseNum(fields[0], claims.user_id) || !ParseNum(fields[2], claims.expires_s) ||
      (n == 5 && (!ParseNum(fields[3], claims.session_id) || !ParseNum(fields[4], claims.token_gen))) ||
      !WellFormed(claims, n == 5))
    return fail(TokenError::kMalformed);
  if (claims.expires_s <= now_s) return fail(TokenError::kExpired);
  return claims;
}

}  // namespace chat
