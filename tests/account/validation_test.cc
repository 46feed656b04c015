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

TEST(AccountValidation, DisplayNameRules) {
  EXPECT_TRUE(ValidDisplayName("Alice", 32));
  EXPECT_TRUE(ValidDisplayName("A", 32));
  EXPECT_FALSE(ValidDisplayName("", 32));
  std::string cjk32;
  for (int i = 0; i < 32; ++i) cjk32 += "\xE5\xBC\xA0";  // 32 code points, 96 bytes
  EXPECT_TRUE(ValidDisplayName(cjk32, 32));
  EXPECT_FALSE(ValidDisplayName(cjk32 + "a", 32));
  EXPECT_FALSE(ValidDisplayName(std::string(33, 'a'), 32));
  EXPECT_FALSE(ValidDisplayName("Al\nice", 32));
  EXPECT_FALSE(ValidDisplayName("Al\tice", 32));
  EXPECT_FALSE(ValidDisplayName(std::string("Al\0ice", 6), 32));
  EXPECT_FALSE(ValidDisplayName("Al\x7Fice", 32));
  EXPECT_FALSE(ValidDisplayName("Al\xC2\x85ice", 32));  // U+0085 NEL, a C1 control
  EXPECT_TRUE(ValidDisplayName("Al\xC2\xA0ice", 32));   // U+00A0 no-break space is fine
  EXPECT_FALSE(ValidDisplayName("Al\xFFice", 32));
}

TEST(AccountValidation, GreetingMayBeEmptyButBounded) {
  EXPECT_TRUE(ValidGreeting("", 50));
  EXPECT_TRUE(ValidGreeting(std::string(50, 'x'), 50));
  EXPECT_FALSE(ValidGreeting(std::string(51, 'x'), 50));
  EXPECT_FALSE(ValidGreeting("hi\x01", 50));
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
