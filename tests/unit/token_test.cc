// Session tokens: what a gateway accepts and, above all, what it refuses.
#include "common/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>
#include <vector>

namespace chat {
namespace {

constexpr char kSecret[] = "0123456789abcdef-unit-test-secret";
constexpr char kOtherSecret[] = "fedcba9876543210-unit-test-other";
constexpr int64_t kNow = 1700000000;

// One key, "k1", that signs and also verifies v1 tokens.
TokenKeys Keys() { return TokenKeys::Single("k1", kSecret); }

// Keys from (id, secret, legacy_v1) and the signing id.
TokenKeys Ring(std::vector<TokenKey> keys, std::string signing) {
  TokenKeys k;
  k.keys = std::move(keys);
  k.signing_key_id = std::move(signing);
  return k;
}

TokenClaims Claims(uint64_t user = 42, std::string device = "phone-1", int64_t exp = kNow + 3600) {
  TokenClaims c;
  c.user_id = user;
  c.device_id = std::move(device);
  c.expires_s = exp;
  return c;
}

// Builds a correctly signed token around an arbitrary payload, to reach the payload checks that
// only run after the signature is verified: v1 without a key id, v2 with one.
std::string SignRaw(const std::string& secret, const std::string& payload, const std::string& kid = "") {
  std::string body = (kid.empty() ? "v1." : "v2." + kid + ".") + Base64UrlEncode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return body + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
}

TEST(Token, IssueVerifyRoundTrip) {
  TokenSigner signer(Keys());
  for (uint64_t user : {1ULL, 42ULL, (1ULL << 63) - 1}) {  // the largest user id: 2^63 - 1
    for (const std::string& device : std::vector<std::string>{"a", "phone-1", "Web_Browser.2", std::string(64, 'x')}) {
      std::string token = signer.Issue(Claims(user, device));
      EXPECT_EQ(token.substr(0, 6), "v2.k1.");
      TokenError err{};
      auto got = signer.Verify(token, kNow, &err);
      ASSERT_TRUE(got.has_value()) << token;
      EXPECT_EQ(got->user_id, user);
      EXPECT_EQ(got->device_id, device);
      EXPECT_EQ(got->expires_s, kNow + 3600);
    }
  }
  // Another signer with the same secret (another gateway) accepts it too.
  TokenSigner other(Keys());
  EXPECT_TRUE(other.Verify(signer.Issue(Claims()), kNow).has_value());
}

// A device id with a ':' would shift the payload's fields: "a:99999999999:7" as a device id and an
// expired expiry would read back as device "a", a far expiry, session 7. The signer signs nothing
// it would not verify to the same claims (a fuzzer found this).
TEST(Token, ClaimsNoTokenMayCarryAreNeverSigned) {
  TokenSigner signer(Keys());
  std::vector<TokenClaims> bad = {Claims(42, "a:99999999999:7", 9033), Claims(42, ""), Claims(42, std::string(65, 'x')),
                                  Claims(0), Claims(1ULL << 63)};
  TokenClaims no_generation = Claims();
  no_generation.session_id = 5;
  bad.push_back(no_generation);
  TokenClaims big_session = Claims();
  big_session.session_id = 1ULL << 63;
  big_session.token_gen = 1;
  bad.push_back(big_session);
  for (const auto& c : bad) {
    const std::string token = signer.Issue(c);
    EXPECT_EQ(token, "") << c.device_id;
    EXPECT_FALSE(signer.Verify(token, 0).has_value());
  }
}

TEST(Token, ExpiresAtExp) {
  TokenSigner signer(Keys());
  std::string token = signer.Issue(Claims(42, "d", kNow));
  EXPECT_TRUE(signer.Verify(token, kNow - 1).has_value());
  TokenError err{};
  EXPECT_FALSE(signer.Verify(token, kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kExpired);
  err = TokenError::kMalformed;
  EXPECT_FALSE(signer.Verify(token, kNow + 100000, &err).has_value());
  EXPECT_EQ(err, TokenError::kExpired);
}

TEST(Token, AnyChangedByteIsRefused) {
  TokenSigner signer(Keys());
  const std::string token = signer.Issue(Claims());
  const size_t kid_end = token.find('.', 3);
  const size_t last_dot = token.rfind('.');
  ASSERT_EQ(kid_end, 5u);
  ASSERT_GT(last_dot, kid_end);
  for (size_t i = 0; i < token.size(); ++i) {
    for (unsigned char flip : {0x01, 0x02, 0x20, 0x80}) {
      std::string bad = token;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      TokenError err{};
      auto got = signer.Verify(bad, kNow, &err);
      ASSERT_FALSE(got.has_value()) << "byte " << i << " ^ " << int(flip) << " accepted: " << bad;
      if (i < 3) {
        EXPECT_EQ(err, TokenError::kMalformed) << "version prefix changed at " << i;
      } else if (i < kid_end) {
        // Another key id: one that is not configured, or not a key id at all.
        EXPECT_TRUE(err == TokenError::kUnknownKey || err == TokenError::kMalformed) << "byte " << i;
      } else {
        EXPECT_TRUE(err == TokenError::kBadSignature || err == TokenError::kMalformed)
            << "byte " << i << " gave error " << int(err);
      }
      // In the payload (before the mac) a changed byte is a forgery: the mac no longer matches.
      if (i > kid_end && i < last_dot && bad[i] != '.') {
        EXPECT_EQ(err, TokenError::kBadSignature) << "byte " << i;
      }
    }
  }
  // Truncated and extended tokens.
  for (size_t n = 0; n < token.size(); ++n) EXPECT_FALSE(signer.Verify(token.substr(0, n), kNow).has_value()) << n;
  EXPECT_FALSE(signer.Verify(token + "A", kNow).has_value());
  EXPECT_FALSE(signer.Verify(token + ".", kNow).has_value());
}

TEST(Token, OtherSecretIsBadSignature) {
  TokenSigner a(Keys());
  TokenSigner b(TokenKeys::Single("k1", kOtherSecret));  // same key id, another secret
  TokenError err{};
  EXPECT_FALSE(b.Verify(a.Issue(Claims()), kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kBadSignature);
  EXPECT_FALSE(b.Verify(SignRaw(kSecret, "42:dev:" + std::to_string(kNow + 10)), kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kBadSignature);  // v1 under b's legacy key
}

TEST(Token, UnknownKeyIdIsRefusedEvenWhenTheSecretMatches) {
  TokenSigner signer(Keys());
  // Signed with the right secret but naming a key the verifier does not have.
  const std::string payload = "42:dev:" + std::to_string(kNow + 10);
  TokenError err{};
  EXPECT_FALSE(signer.Verify(SignRaw(kSecret, payload, "k2"), kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
  ASSERT_TRUE(signer.Verify(SignRaw(kSecret, payload, "k1"), kNow).has_value());
  // v1 tokens need a key marked legacy_v1.
  TokenSigner no_legacy(Ring({{"k1", kSecret, false}}, "k1"));
  EXPECT_FALSE(no_legacy.Verify(SignRaw(kSecret, payload), kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
  EXPECT_TRUE(no_legacy.Verify(SignRaw(kSecret, payload, "k1"), kNow).has_value());
}

TEST(Token, SurvivesARotationUntilItsKeyIsRetired) {
  // Step 0: the old key signs. Users hold its tokens (v2, and v1 from before key ids).
  TokenSigner before(Ring({{"old", kSecret, true}}, "old"));
  const std::string old_v2 = before.Issue(Claims(1));
  const std::string old_v1 = SignRaw(kSecret, "2:dev:" + std::to_string(kNow + 3600));
  ASSERT_TRUE(before.Verify(old_v1, kNow).has_value());
  // Step 1: the new key is added everywhere, verify-only: nothing changes for anyone.
  TokenSigner step1(Ring({{"old", kSecret, true}, {"new", kOtherSecret, false}}, "old"));
  EXPECT_TRUE(step1.Verify(old_v2, kNow).has_value());
  EXPECT_TRUE(step1.Verify(old_v1, kNow).has_value());
  EXPECT_EQ(step1.Issue(Claims(3)).substr(0, 7), "v2.old.");
  // Step 2: the new key signs; the old one still verifies.
  TokenSigner step2(Ring({{"old", kSecret, true}, {"new", kOtherSecret, false}}, "new"));
  const std::string fresh = step2.Issue(Claims(4));
  EXPECT_EQ(fresh.substr(0, 7), "v2.new.");
  EXPECT_TRUE(step2.Verify(old_v2, kNow).has_value());
  EXPECT_TRUE(step2.Verify(old_v1, kNow).has_value());
  EXPECT_TRUE(step2.Verify(fresh, kNow).has_value());
  // A gateway still at step 1 accepts the new key's tokens: why step 1 comes first.
  EXPECT_TRUE(step1.Verify(fresh, kNow).has_value());
  // A gateway that skipped step 1 refuses them.
  TokenError err{};
  EXPECT_FALSE(before.Verify(fresh, kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
  // Step 3 (after token_ttl_s): the old key is retired; its tokens are refused, the new ones live.
  TokenSigner step3(Ring({{"new", kOtherSecret, false}}, "new"));
  EXPECT_TRUE(step3.Verify(fresh, kNow).has_value());
  EXPECT_FALSE(step3.Verify(old_v2, kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
  EXPECT_FALSE(step3.Verify(old_v1, kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kUnknownKey);
}

TEST(TokenDeathTest, ASignerWithoutItsSigningKeyIsABrokenInvariant) {
  EXPECT_DEATH(TokenSigner(Ring({{"a", kSecret, false}}, "b")), "signing key");
}

TEST(TokenKeyId, Rules) {
  for (const char* good : {"a", "k1", "2026-12_rotation", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"})
    EXPECT_TRUE(ValidTokenKeyId(good)) << good;
  for (const char* bad : {"", "a.b", "a b", "k:1", "ü", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg", "k/1"})
    EXPECT_FALSE(ValidTokenKeyId(bad)) << bad;
}

TEST(Token, GarbageIsMalformed) {
  TokenSigner signer(Keys());
  for (std::string bad : {std::string(""),
                          std::string("v"),
                          std::string("v1"),
                          std::string("v1."),
                          std::string("v1.."),
                          std::string("v1..."),
                          std::string("."),
                          std::string("v1.abc"),
                          std::string("v2.abc.def"),
                          std::string("v2..abc.def"),
                          std::string("v2.k1..AAAA"),
                          std::string("v2.k.1.a.b"),
                          std::string("v3.k1.a.b"),
                          std::string("Bearer v1.a.b"),
                          std::string("v1.a.b!"),
                          std::string("v1.a.b c"),
                          std::string("v1.a.A"),
                          std::string(1000, 'v'),
                          "v1." + std::string(600, 'A') + ".AAAA",
                          std::string(100000, '.'),
                          std::string("v1.\0\0.\0", 7)}) {
    TokenError err = TokenError::kExpired;
    EXPECT_FALSE(signer.Verify(bad, kNow, &err).has_value()) << bad.substr(0, 40);
    EXPECT_EQ(err, TokenError::kMalformed) << bad.substr(0, 40);
  }
  // Verify without an error out-parameter must not crash either.
  EXPECT_FALSE(signer.Verify("junk", kNow).has_value());
}

TEST(Token, SignedButMalformedPayloadIsMalformed) {
  TokenSigner signer(Keys());
  // Sanity: a well-formed payload signed by hand verifies, so the failures below are the payload's.
  ASSERT_TRUE(signer.Verify(SignRaw(kSecret, "42:dev:" + std::to_string(kNow + 10)), kNow).has_value());
  const std::string exp = std::to_string(kNow + 10);
  for (std::string payload :
       {std::string(""), std::string("42"), "42:" + exp, "0:dev:" + exp, "-1:dev:" + exp, "abc:dev:" + exp,
        "42::" + exp, "42:bad device:" + exp, "42:a:b:" + exp, std::string("42:dev:"), std::string("42:dev:soon"),
        std::string("42:dev:1e9"), "42:" + std::string(65, 'd') + ":" + exp, "18446744073709551616:dev:" + exp,
        "9223372036854775808:dev:" + exp /* 2^63: no user id is that large */, "18446744073709551615:dev:" + exp,
        "042x:dev:" + exp, std::string("42:dev:99999999999999999999")}) {
    for (const std::string kid : {"", "k1"}) {  // v1 and v2 carry the same payload
      TokenError err{};
      EXPECT_FALSE(signer.Verify(SignRaw(kSecret, payload, kid), kNow, &err).has_value()) << payload;
      EXPECT_EQ(err, TokenError::kMalformed) << payload;
    }
  }
}

TEST(Token, RandomInputNeverVerifies) {
  TokenSigner signer(Keys());
  std::mt19937 rng(7);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:v1 \x01\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string s = (i % 3 == 1) ? "v1." : (i % 3 == 2) ? "v2.k1." : "";
    size_t n = rng() % 200;
    for (size_t k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    TokenError err{};
    EXPECT_FALSE(signer.Verify(s, kNow, &err).has_value()) << s;
  }
}

TEST(Base64Url, KnownVectors) {
  // RFC 4648 section 10, unpadded, and the URL-safe alphabet for 62/63.
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8").value_or("?"), "\xfb\xff");
  EXPECT_EQ(Base64UrlDecode("Zm9vYmFy").value_or("?"), "foobar");
}

TEST(Base64Url, RejectsInvalid) {
  for (const char* bad : {"Z", "Zm9vY", "Zh", "Zm9", "Zm9v+", "Zm9v/", "Zg==", "Zm 9v", "Zm9v\n", "="}) {
    // "Zh" and "Zm9" carry non-zero bits past the last byte: not the canonical encoding of anything
    // ("f" is "Zg", "fo" is "Zm8"); padding and the standard alphabet's +/ are not base64url.
    EXPECT_FALSE(Base64UrlDecode(bad).has_value()) << bad;
  }
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::mt19937 rng(8);
  for (size_t len = 0; len <= 64; ++len) {
    for (int rep = 0; rep < 50; ++rep) {
      std::string bytes(len, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng() & 0xff);
      std::string enc = Base64UrlEncode(bytes);
      EXPECT_EQ(enc.size(), (len * 4 + 2) / 3) << "unpadded length for " << len;
      EXPECT_EQ(enc.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos);
      auto dec = Base64UrlDecode(enc);
      ASSERT_TRUE(dec.has_value()) << "length " << len;
      EXPECT_EQ(*dec, bytes) << "length " << len;
    }
  }
}

TEST(DeviceId, Rules) {
  EXPECT_TRUE(ValidDeviceId("a"));
  EXPECT_TRUE(ValidDeviceId("phone-1"));
  EXPECT_TRUE(ValidDeviceId("A.b_c-9"));
  EXPECT_TRUE(ValidDeviceId(std::string(64, 'z')));
  EXPECT_FALSE(ValidDeviceId(""));
  EXPECT_FALSE(ValidDeviceId(std::string(65, 'z')));
  for (const char* bad : {"a b", "a/b", "a:b", "a+b", "ü", "a\n", "a\tb", "<x>", "a@b"})
    EXPECT_FALSE(ValidDeviceId(bad)) << bad;
  EXPECT_FALSE(ValidDeviceId(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace chat
