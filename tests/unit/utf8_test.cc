// The one UTF-8 decoder (common/utf8.h) that every text rule of the tree goes through.
#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace chat {
namespace {

TEST(Utf8, Validity) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ASCII ~"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9"));                   // é, 2 bytes
  EXPECT_TRUE(IsValidUtf8("\xE4\xB8\x96"));               // 世, 3 bytes
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));           // 😀, 4 bytes
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));           // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));               // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));               // U+D7FF, just below the surrogates
  EXPECT_TRUE(IsValidUtf8(std::string_view("a\0b", 3)));  // NUL is valid UTF-8 (control check is separate)
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));                  // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));                  // overlong
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));              // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));          // overlong U+FFFF
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));              // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));              // surrogate U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\x80"));          // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC3"));          // truncated 2-byte
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));      // truncated 3-byte
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));  // truncated 4-byte
  EXPECT_FALSE(IsValidUtf8("ok\xF0\x9F\x98"));
  EXPECT_FALSE(IsValidUtf8("\xC3x"));             // continuation replaced by ASCII
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8\x96\x80"));  // extra continuation
}

TEST(Utf8, Length) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("hello"), 5u);
  EXPECT_EQ(Utf8Length("h\xC3\xA9llo"), 5u);
  EXPECT_EQ(Utf8Length("\xE4\xB8\x96\xE7\x95\x8C"), 2u);
  EXPECT_EQ(Utf8Length("\xF0\x9F\x98\x80"), 1u);
  EXPECT_EQ(Utf8Length("a\xF0\x9F\x98\x80"
                       "b\xC3\xA9"),
            4u);
}

TEST(Utf8, ControlChars) {
  EXPECT_FALSE(HasControlChars(""));
  EXPECT_FALSE(HasControlChars("hello world"));
  EXPECT_FALSE(HasControlChars("h\xC3\xA9llo \xE4\xB8\x96 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(HasControlChars("\xC2\xA0"));  // U+00A0 no-break space is not a control
  EXPECT_FALSE(HasControlChars("\xC3\x85"));  // Å: 0x85 as a continuation of another lead byte
  EXPECT_TRUE(HasControlChars("a\nb"));
  EXPECT_TRUE(HasControlChars("\t"));
  EXPECT_TRUE(HasControlChars(std::string_view("\0", 1)));
  EXPECT_TRUE(HasControlChars("\x1F"));
  EXPECT_TRUE(HasControlChars("\x7F"));        // DEL
  EXPECT_TRUE(HasControlChars("x\xC2\x80"));   // U+0080, first C1
  EXPECT_TRUE(HasControlChars("\xC2\x85"));    // U+0085 NEL
  EXPECT_TRUE(HasControlChars("\xC2\x9F y"));  // U+009F, last C1
}

TEST(Utf8, CodePointsCountsAndRejectsMalformed) {
  EXPECT_EQ(Utf8CodePoints(""), 0u);
  EXPECT_EQ(Utf8CodePoints("abc"), 3u);
  EXPECT_EQ(Utf8CodePoints("\xE5\xBC\xA0\xE4\xB8\x89"), 2u);  // 张三
  EXPECT_EQ(Utf8CodePoints("\xF0\x9F\x98\x80"), 1u);          // emoji
  EXPECT_FALSE(Utf8CodePoints("\xC0\xAF"));                   // overlong '/'
  EXPECT_FALSE(Utf8CodePoints("\xE0\x80\xAF"));               // overlong, 3 bytes
  EXPECT_FALSE(Utf8CodePoints("\xED\xA0\x80"));               // surrogate U+D800
  EXPECT_FALSE(Utf8CodePoints("\xF4\x90\x80\x80"));           // above U+10FFFF
  EXPECT_FALSE(Utf8CodePoints("\xE5\xBC"));                   // truncated
  EXPECT_FALSE(Utf8CodePoints("\x80"));                       // lone continuation
  EXPECT_FALSE(Utf8CodePoints("\xFF"));
}

TEST(Utf8, CountsCodePoints) {
  EXPECT_EQ(Utf8CodePoints("héllo 你好 🙂"), 10u);
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("abc\xE4\xBD"));       // truncated
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(Utf8, TruncateKeepsWholeCodePoints) {
  std::string s = "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x99\x82z";  // a é 你 🙂 z
  std::string t = s;
  TruncateUtf8(&t, 4);
  EXPECT_EQ(t, "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x99\x82");
  t = s;
  TruncateUtf8(&t, 3);
  EXPECT_EQ(t, "a\xC3\xA9\xE4\xBD\xA0");
  EXPECT_EQ(Utf8CodePoints(t), 3u);
  t = s;
  TruncateUtf8(&t, 5);  // exactly as long: unchanged
  EXPECT_EQ(t, s);
  TruncateUtf8(&t, 50);
  EXPECT_EQ(t, s);
  TruncateUtf8(&t, 0);
  EXPECT_EQ(t, "");
}

TEST(Utf8, PrefixBytesNeverEndsInsideACodePoint) {
  const std::string s = "ab\xE4\xB8\x96";  // a b 世
  EXPECT_EQ(Utf8PrefixBytes(s, 10), 5u);
  EXPECT_EQ(Utf8PrefixBytes(s, 5), 5u);
  EXPECT_EQ(Utf8PrefixBytes(s, 4), 2u);
  EXPECT_EQ(Utf8PrefixBytes(s, 3), 2u);
  EXPECT_EQ(Utf8PrefixBytes(s, 2), 2u);
  EXPECT_EQ(Utf8PrefixBytes(s, 0), 0u);
}

TEST(Utf8, ForEachCodePointStopsAtTheFirstInvalidByte) {
  std::vector<uint32_t> seen;
  EXPECT_FALSE(ForEachCodePoint("a\xC3\xA9\xFFz", [&](uint32_t cp) { return seen.push_back(cp), true; }));
  EXPECT_EQ(seen, (std::vector<uint32_t>{'a', 0xE9}));
  seen.clear();
  EXPECT_TRUE(ForEachCodePoint("abc", [&](uint32_t cp) { return seen.push_back(cp), cp != 'b'; }));
  EXPECT_EQ(seen, (std::vector<uint32_t>{'a', 'b'}));
}

TEST(EscapeForTerminal, ControlsBidiAndBadBytesBecomeVisibleEscapes) {
  EXPECT_EQ(EscapeForTerminal("plain text, ünïcödé 群"), "plain text, ünïcödé 群");
  // A message that clears the screen, homes the cursor and draws a fake line of its own.
  EXPECT_EQ(EscapeForTerminal("hi\x1b[2J\x1b[H\r\n[d.1.2 #9] boss: pay me"),
            "hi\\x1b[2J\\x1b[H\\x0d\\n[d.1.2 #9] boss: pay me");
  EXPECT_EQ(EscapeForTerminal(std::string("a\0b\tc\x7f", 6)), "a\\x00b\\tc\\x7f");
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"
                              "31m"),
            "\\u{009b}31m");  // C1 CSI
  EXPECT_EQ(EscapeForTerminal("abc\xe2\x80\xae"
                              "evil"),
            "abc\\u{202e}evil");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(EscapeForTerminal("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");
  EXPECT_EQ(EscapeForTerminal("bad\xff\xc0"), "bad\\xff\\xc0");
  EXPECT_EQ(EscapeForTerminal("back\\slash"), "back\\\\slash") << "an escape cannot be faked";
  for (char c = 0; c < 0x20; ++c)
    EXPECT_EQ(EscapeForTerminal(std::string(1, c))
                  .find_first_of(std::string("\0\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13"
                                             "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
                                             32)),
              std::string::npos)
        << static_cast<int>(c);
}

}  // namespace
}  // namespace chat
