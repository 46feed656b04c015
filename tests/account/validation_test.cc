#include "account/validation.h"

#include <gtest/gtest.h>

#include <regex>

#include "account/secure_random.h"
#include "common/shard.h"

namespace chat::account {
namespace {

TEST(AccountValidation, PhoneMustBeE164) {
  EXPECT_TRUE(ValidPhone("+8613800138000"));
  EXPECT_TRUE(ValidPhone("+1234567"));            // shortest: 7 digits
  EXPECT_TRUE(ValidPhone("+123456789012345"));    // longest: 15 digits
  EXPECT_FALSE(ValidPhone("+123456"));            // 6 digits
  EXPECT_FALSE(ValidPhone("+1234567890123456"));  // 16 digits
  EXPECT_FALSE(ValidPhone("8613800138000"));      // no plus
  EXPECT_FALSE(ValidPhone("+0613800138000"));     // leading zero
  EXPECT_FALSE(ValidPhone("+86 138001380"));
  EXPECT_FALSE(ValidPhone("+86138001380a"));
  EXPECT_FALSE(ValidPhone(""));
  EXPECT_FALSE(ValidPhone("+"));
}

// Display names follow the name policy (common/text_policy.h); each probe of issue 9 item 5 is refused.
bool DisplayNameOk(std::string name, size_t max = 32) { return NormalizeDisplayName(&name, max).ok(); }
bool GreetingOk(std::string greeting, size_t max = 50) { return NormalizeGreeting(&greeting, max).ok(); }

TEST(AccountValidation, DisplayNameRules) {
  EXPECT_TRUE(DisplayNameOk("Alice"));
  EXPECT_TRUE(DisplayNameOk("A"));
  EXPECT_FALSE(DisplayNameOk(""));
  std::string cjk32;
  for (int i = 0; i < 32; ++i) cjk32 += "\xE5\xBC\xA0";  // 32 code points, 96 bytes
  EXPECT_TRUE(DisplayNameOk(cjk32));
  EXPECT_FALSE(DisplayNameOk(cjk32 + "a"));
  EXPECT_FALSE(DisplayNameOk(std::string(33, 'a')));
  EXPECT_FALSE(DisplayNameOk("Al\nice"));
  EXPECT_FALSE(DisplayNameOk("Al\tice"));
  EXPECT_FALSE(DisplayNameOk(std::string("Al\0ice", 6)));
  EXPECT_FALSE(DisplayNameOk("Al\x7Fice"));
  EXPECT_FALSE(DisplayNameOk("Al\xC2\x85ice"));  // U+0085 NEL, a C1 control
  EXPECT_TRUE(DisplayNameOk("Al\xC2\xA0ice"));   // U+00A0 no-break space is fine
  EXPECT_FALSE(DisplayNameOk("Al\xFFice"));
}

TEST(AccountValidation, DisplayNameRefusesTheUnsafeTextProbes) {
  EXPECT_FALSE(DisplayNameOk("\x1b[2JAlice"));                    // ESC
  EXPECT_FALSE(DisplayNameOk("Alice\r"));                         // CR
  EXPECT_FALSE(DisplayNameOk("Alice\xE2\x80\xAEnimda"));          // U+202E RIGHT-TO-LEFT OVERRIDE
  EXPECT_FALSE(DisplayNameOk("Alice\xE2\x81\xA6x\xE2\x81\xA9"));  // U+2066 .. U+2069 isolate
  EXPECT_FALSE(DisplayNameOk("Al\xE2\x80\x8Bice"));               // U+200B ZERO WIDTH SPACE
  EXPECT_FALSE(DisplayNameOk("Al\xE2\x80\x8Dice"));               // U+200D ZERO WIDTH JOINER
  EXPECT_FALSE(
      DisplayNameOk("\xEF\xBB\xBF"
                    "Alice"));                           // U+FEFF BOM
  EXPECT_FALSE(DisplayNameOk("Alice\xF3\xA0\x80\x81"));  // U+E0001 LANGUAGE TAG
  EXPECT_FALSE(DisplayNameOk("   "));                    // whitespace only
  EXPECT_FALSE(DisplayNameOk("\xE3\x80\x80"));           // U+3000 IDEOGRAPHIC SPACE only
  EXPECT_FALSE(DisplayNameOk("\xE3\x85\xA4"));           // U+3164 HANGUL FILLER only
  EXPECT_TRUE(DisplayNameOk(" Alice Smith "));
}

TEST(AccountValidation, DisplayNameIsStoredInNfcAndCountedAfterIt) {
  std::string name = "Rene\xCC\x81";  // "René" with a combining acute accent: 5 code points
  ASSERT_TRUE(NormalizeDisplayName(&name, 4).ok()) << "4 code points after NFC";
  EXPECT_EQ(name, "Ren\xC3\xA9");
  std::string bad = "Ren\xE2\x80\xAE";
  EXPECT_EQ(NormalizeDisplayName(&bad, 32).code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(bad, "Ren\xE2\x80\xAE") << "a refused name is not touched";
}

TEST(AccountValidation, GreetingMayBeEmptyButBounded) {
  EXPECT_TRUE(GreetingOk(""));
  EXPECT_TRUE(GreetingOk(std::string(50, 'x')));
  EXPECT_FALSE(GreetingOk(std::string(51, 'x')));
  EXPECT_FALSE(GreetingOk("hi\x01"));
  EXPECT_FALSE(GreetingOk("hi\xE2\x80\xAE"));      // U+202E
  EXPECT_FALSE(GreetingOk("hi\xE2\x80\x8C"));      // U+200C
  EXPECT_FALSE(GreetingOk("\xEF\xBB\xBFhi"));      // BOM
  EXPECT_FALSE(GreetingOk("hi\xF3\xA0\x81\xBF"));  // U+E007F CANCEL TAG
  EXPECT_FALSE(GreetingOk("  "));                  // not empty, but shows nothing
  std::string g =
      "Gru\xC3\x9F"
      "e aus Ko\xCC\x88ln";  // "Köln" with a combining diaeresis
  ASSERT_TRUE(NormalizeGreeting(&g, 50).ok());
  EXPECT_EQ(g,
            "Gru\xC3\x9F"
            "e aus K\xC3\xB6ln");
}

TEST(AccountValidation, HandleRules) {
  EXPECT_TRUE(ValidHandle("alice_1"));
  EXPECT_TRUE(ValidHandle("Alice-Smith"));
  EXPECT_TRUE(ValidHandle("u_0a1b2c3d4e"));
  EXPECT_TRUE(ValidHandle("abcdef"));               // 6
  EXPECT_TRUE(ValidHandle(std::string(20, 'a')));   // 20
  EXPECT_FALSE(ValidHandle("abcde"));               // 5
  EXPECT_FALSE(ValidHandle(std::string(21, 'a')));  // 21
  EXPECT_FALSE(ValidHandle("1alice"));              // must start with a letter
  EXPECT_FALSE(ValidHandle("_alice"));
  EXPECT_FALSE(ValidHandle("alice!x"));
  EXPECT_FALSE(ValidHandle("alice x"));
  EXPECT_FALSE(ValidHandle("al\xC3\xA9icex"));  // non-ASCII
  EXPECT_FALSE(ValidHandle(""));
  EXPECT_EQ(LowerAscii("AbC_9-Z"), "abc_9-z");
}

TEST(AccountValidation, MaskPhoneHidesTheMiddle) {
  EXPECT_EQ(MaskPhone("+8613800131234"), "+86*******1234");
  EXPECT_EQ(MaskPhone("+8613800131234").find("1380013"), std::string::npos);
  EXPECT_EQ(MaskPhone("+1"), "**");
}

TEST(AccountRandom, HandlesIdsAndCodesHaveTheRightShape) {
  const std::regex handle_re("^u_[a-z0-9]{10}$");
  for (int i = 0; i < 100; ++i) {
    std::string h = RandomHandle();
    EXPECT_TRUE(std::regex_match(h, handle_re)) << h;
    EXPECT_TRUE(ValidHandle(h)) << h;
    std::string code = RandomDigits(6);
    EXPECT_TRUE(std::regex_match(code, std::regex("^[0-9]{6}$"))) << code;
  }
  for (uint32_t shard = 0; shard < 4; ++shard) {
    for (int i = 0; i < 50; ++i) {
      uint64_t id = RandomUserIdOnShard(shard, 4);
      EXPECT_GT(id, 0u);
      EXPECT_LE(id, uint64_t{INT64_MAX});
      EXPECT_EQ(ShardOfUser(id, 4), shard);
    }
  }
  EXPECT_NE(RandomU64(), RandomU64());  // 2^-64 chance of a false failure
}

}  // namespace
}  // namespace chat::account
