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
constexpr int64_t kNow = 1700000000;

TokenClaims Claims(uint64_t user = 42, std::string device = "phone-1", int64_t exp = kNow + 3600) {
  TokenClaims c;
  c.user_id = user;
  c.device_id = std::move(device);
  c.expires_s = exp;
  return c;
}

// Builds a correctly signed token around an arbitrary payload, to reach the payload checks that
// only run after the signature is verified.
std::string SignRaw(const std::string& secret, const std::string& payload) {
  std::string body = "v1." + Base64UrlEncode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return body + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
}

TEST(Token, IssueVerifyRoundTrip) {
  TokenSigner signer(kSecret);
  for (uint64_t user : {1ULL, 42ULL, (1ULL << 63) - 1}) {  // the largest user id: 2^63 - 1
    for (const std::string& device : std::vector<std::string>{"a", "phone-1", "Web_Browser.2", std::string(64, 'x')}) {
      std::string token = signer.Issue(Claims(user, device));
      EXPECT_EQ(token.substr(0, 3), "v1.");
      TokenError err{};
      auto got = signer.Verify(token, kNow, &err);
      ASSERT_TRUE(got.has_value()) << token;
      EXPECT_EQ(got->user_id, user);
      EXPECT_EQ(got->device_id, device);
      EXPECT_EQ(got->expires_s, kNow + 3600);
    }
  }
  // Another signer with the same secret (another gateway) accepts it too.
  TokenSigner other(kSecret);
  EXPECT_TRUE(other.Verify(signer.Issue(Claims()), kNow).has_value());
}

TEST(Token, ExpiresAtExp) {
  TokenSigner signer(kSecret);
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
  TokenSigner signer(kSecret);
  const std::string token = signer.Issue(Claims());
  const size_t last_dot = token.rfind('.');
  ASSERT_NE(last_dot, std::string::npos);
  for (size_t i = 0; i < token.size(); ++i) {
    for (unsigned char flip : {0x01, 0x02, 0x20, 0x80}) {
      std::string bad = token;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      TokenError err{};
      auto got = signer.Verify(bad, kNow, &err);
      ASSERT_FALSE(got.has_value()) << "byte " << i << " ^ " << int(flip) << " accepted: " << bad;
      if (i < 3) {
        EXPECT_EQ(err, TokenError::kMalformed) << "version prefix changed at " << i;
      } else {
        EXPECT_TRUE(err == TokenError::kBadSignature || err == TokenError::kMalformed)
            << "byte " << i << " gave error " << int(err);
      }
      // In the payload (before the mac) a changed byte is a forgery: the mac no longer matches.
      if (i >= 3 && i < last_dot && bad[i] != '.') {
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
  TokenSigner a(kSecret);
  TokenSigner b("another-secret-of-enough-length");
  TokenError err{};
  EXPECT_FALSE(b.Verify(a.Issue(Claims()), kNow, &err).has_value());
  EXPECT_EQ(err, TokenError::kBadSignature);
}

TEST(Token, GarbageIsMalformed) {
  TokenSigner signer(kSecret);
  for (std::string bad : {std::string(""), std::string("v"), std::string("v1"), std::string("v1."), std::string("v1.."),
                          std::string("v1..."), std::string("."), std::string("v1.abc"), std::string("v2.abc.def"),
                          std::string("Bearer v1.a.b"), std::string("v1.a.b!"), std::string("v1.a.b c"),
                          std::string("v1.a.A"), std::string(1000, 'v'), "v1." + std::string(600, 'A') + ".AAAA",
                          std::string(100000, '.'), std::string("v1.\0\0.\0", 7)}) {
    TokenError err = TokenError::kExpired;
    EXPECT_FALSE(signer.Verify(bad, kNow, &err).has_value()) << bad.substr(0, 40);
    EXPECT_EQ(err, TokenError::kMalformed) << bad.substr(0, 40);
  }
  // Verify without an error out-parameter must not crash either.
  EXPECT_FALSE(signer.Verify("junk", kNow).has_value());
}

TEST(Token, SignedButMalformedPayloadIsMalformed) {
  TokenSigner signer(kSecret);
  // Sanity: a well-formed payload signed by hand verifies, so the failures below are the payload's.
  ASSERT_TRUE(signer.Verify(SignRaw(kSecret, "42:dev:" + std::to_string(kNow + 10)), kNow).has_value());
  const std::string exp = std::to_string(kNow + 10);
  for (std::string payload :
       {std::string(""), std::string("42"), "42:" + exp, "0:dev:" + exp, "-1:dev:" + exp, "abc:dev:" + exp,
        "42::" + exp, "42:bad device:" + exp, "42:a:b:" + exp, std::string("42:dev:"), std::string("42:dev:soon"),
        std::string("42:dev:1e9"), "42:" + std::string(65, 'd') + ":" + exp, "18446744073709551616:dev:" + exp,
        "9223372036854775808:dev:" + exp /* 2^63: no user id is that large */, "18446744073709551615:dev:" + exp,
        "042x:dev:" + exp, std::string("42:dev:99999999999999999999")}) {
    TokenError err{};
    EXPECT_FALSE(signer.Verify(SignRaw(kSecret, payload), kNow, &err).has_value()) << payload;
    EXPECT_EQ(err, TokenError::kMalformed) << payload;
  }
}

TEST(Token, RandomInputNeverVerifies) {
  TokenSigner signer(kSecret);
  std::mt19937 rng(7);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:v1 \x01\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string s = (i % 2) ? "v1." : "";
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
