// The one text policy (common/text_policy.h): every rule per field kind, every forbidden class,
// NFC, lengths after normalization, and https-only URLs.
#include "common/text_policy.h"

#include <gtest/gtest.h>
#include <utf8proc.h>

#include <random>
#include <string>
#include <vector>

namespace chat {
namespace {

// UTF-8 of one code point.
std::string U(uint32_t cp) {
  uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

constexpr TextRule kMessage{TextKind::kMessage, 1, 4000};
constexpr TextRule kName{TextKind::kName, 1, 32};
constexpr TextRule kOptionalName{TextKind::kName, 0, 50};

TextFault Fault(const TextRule& rule, std::string s) { return NormalizeTextFault(rule, &s); }

TEST(TextPolicy, MessageTextAllowsNewlineTabAndAnyScript) {
  for (std::string s : {std::string("line one\nline two\tand a tab"), std::string("你好，世界"),
                        std::string("مرحبا") + U(0x200F) + " ok",                      // RTL mark: RTL writers need it
                        U(0x1F468) + U(0x200D) + U(0x1F469) + U(0x200D) + U(0x1F467),  // family: ZWJ sequence
                        U(0x1F3F4) + U(0xE0067) + U(0xE0062) + U(0xE0065) + U(0xE006E) + U(0xE0067) +
                            U(0xE007F),  // flag of England: tag characters
                        U(0xFEFF) + "bom", U(0x10FFFF), U(0xFFFF)}) {
    SCOPED_TRACE(s);
    const std::string before = s;
    EXPECT_EQ(NormalizeTextFault(kMessage, &s), TextFault::kNone);
    EXPECT_EQ(s, before) << "NFC text must come out unchanged";
  }
}

TEST(TextPolicy, MessageTextRefusesEveryOtherControl) {
  for (uint32_t cp = 0; cp < 0x20; ++cp) {
    if (cp == '\n' || cp == '\t') continue;
    EXPECT_EQ(Fault(kMessage, "a" + U(cp) + "b"), TextFault::kControl) << "U+" << std::hex << cp;
  }
  EXPECT_EQ(Fault(kMessage, "\x1b[2J\x1b[Hfake line"), TextFault::kControl);  // ESC: clear screen, home
  EXPECT_EQ(Fault(kMessage, std::string("a\0b", 3)), TextFault::kControl);    // NUL
  EXPECT_EQ(Fault(kMessage, "visible\rhidden"), TextFault::kControl);         // CR
  EXPECT_EQ(Fault(kMessage, "\r\n"), TextFault::kControl);
  EXPECT_EQ(Fault(kMessage, "a\x7F"), TextFault::kControl);  // DEL
  for (uint32_t cp = 0x80; cp <= 0x9F; ++cp)                 // C1, e.g. U+009B CSI
    EXPECT_EQ(Fault(kMessage, "x" + U(cp)), TextFault::kControl) << "U+" << std::hex << cp;
  EXPECT_EQ(Fault(kMessage, "caf\xC3"), TextFault::kInvalidUtf8);
  EXPECT_EQ(Fault(kMessage, "\xED\xA0\x80"), TextFault::kInvalidUtf8);  // a surrogate
  EXPECT_EQ(Fault(kMessage, ""), TextFault::kTooShort);
  EXPECT_EQ(Fault(kMessage, "   "), TextFault::kNone) << "blank messages are allowed (only names must show)";
}

// ASCII is scanned eight bytes at a time: a control at any position of a long run is still found.
TEST(TextPolicy, LongAsciiRunsAreCheckedAtEveryPosition) {
  for (size_t pos = 0; pos < 24; ++pos) {
    for (char c : {'\x1b', '\0', '\r', '\x7f', '\x01', '\x1f'}) {
      std::string s(24, 'x');
      s[pos] = c;
      EXPECT_EQ(Fault(kMessage, s), TextFault::kControl) << "byte " << int(c) << " at " << pos;
      EXPECT_EQ(Fault(kName, s), TextFault::kControl) << "byte " << int(c) << " at " << pos;
    }
    std::string s(24, 'x');
    s[pos] = '\n';
    EXPECT_EQ(Fault(kMessage, s), TextFault::kNone) << pos;
    EXPECT_EQ(Fault(kName, s), TextFault::kControl) << pos;
    s[pos] = '\xff';
    EXPECT_EQ(Fault(kMessage, s), TextFault::kInvalidUtf8) << pos;
    std::string blank(24, ' ');
    EXPECT_EQ(Fault(kName, blank), TextFault::kBlank);
    blank[pos] = 'x';
    EXPECT_EQ(Fault(kName, blank), TextFault::kNone) << pos;
  }
  std::string s(4000, ' ');
  s[3999] = '\x1b';
  EXPECT_EQ(Fault(kMessage, s), TextFault::kControl);
}

TEST(TextPolicy, NamesRefuseEveryControlAndLineBreak) {
  for (uint32_t cp = 0; cp < 0x20; ++cp)
    EXPECT_EQ(Fault(kName, "Al" + U(cp) + "ice"), TextFault::kControl) << "U+" << std::hex << cp;
  for (uint32_t cp : {0x7Fu, 0x80u, 0x85u, 0x9Bu, 0x9Fu, 0x2028u, 0x2029u})
    EXPECT_EQ(Fault(kName, "Al" + U(cp) + "ice"), TextFault::kControl) << "U+" << std::hex << cp;
  EXPECT_EQ(Fault(kName, "Al\xFFice"), TextFault::kInvalidUtf8);
  EXPECT_EQ(Fault(kName, "Al" + U(0xA0) + "ice"), TextFault::kNone) << "no-break space is a fine space";
}

TEST(TextPolicy, NamesAreTrimmedAndCountedWithoutTheirPadding) {
  auto normalized = [](const TextRule& rule, std::string s) {
    EXPECT_EQ(NormalizeTextFault(rule, &s), TextFault::kNone) << s;
    return s;
  };
  EXPECT_EQ(normalized(kName, "  Alice "), "Alice");
  EXPECT_EQ(normalized(kName, U(0x3000) + "Li Lei" + U(0xA0)), "Li Lei") << "ideographic and no-break spaces";
  EXPECT_EQ(normalized(kName, "Al  ice"), "Al  ice") << "inner spaces stay";
  EXPECT_EQ(normalized(kName, " e" + U(0x301) + " "), U(0xE9)) << "trimmed, then NFC";
  EXPECT_EQ(normalized(kName, " " + std::string(32, 'x') + " "), std::string(32, 'x'));
  EXPECT_EQ(Fault(kName, std::string(33, 'x') + " "), TextFault::kTooLong);
  EXPECT_EQ(Fault(kName, "   "), TextFault::kBlank);
  // Message text keeps its spaces.
  std::string m = "  hi  ";
  EXPECT_EQ(NormalizeTextFault(kMessage, &m), TextFault::kNone);
  EXPECT_EQ(m, "  hi  ");
}

TEST(TextPolicy, NamesRefuseBidiFormattingCharacters) {
  std::vector<uint32_t> bidi{0x061C, 0x200E, 0x200F};
  for (uint32_t cp = 0x202A; cp <= 0x202E; ++cp) bidi.push_back(cp);
  for (uint32_t cp = 0x2066; cp <= 0x2069; ++cp) bidi.push_back(cp);
  for (uint32_t cp : bidi)
    EXPECT_EQ(Fault(kName, "photo" + U(cp) + "gpj.exe"), TextFault::kBidi) << "U+" << std::hex << cp;
  EXPECT_EQ(Fault(kName, "\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85"), TextFault::kNone) << "Arabic letters are fine";
}

TEST(TextPolicy, NamesRefuseZeroWidthCharacters) {
  for (uint32_t cp : {0x200Bu, 0x200Cu, 0x200Du, 0x2060u, 0xFEFFu}) {
    EXPECT_EQ(Fault(kName, "ad" + U(cp) + "min"), TextFault::kZeroWidth) << "U+" << std::hex << cp;
    EXPECT_EQ(Fault(kName, U(cp) + "admin"), TextFault::kZeroWidth) << "leading U+" << std::hex << cp;
  }
  // Hence no ZWJ emoji sequence in a name (they are fine in messages), but single emoji are.
  EXPECT_EQ(Fault(kName, U(0x1F468) + U(0x200D) + U(0x1F469)), TextFault::kZeroWidth);
  EXPECT_EQ(Fault(kName, "Bob " + U(0x1F600)), TextFault::kNone);
}

TEST(TextPolicy, NamesRefuseTagCharacters) {
  for (uint32_t cp : {0xE0000u, 0xE0001u, 0xE0020u, 0xE0041u, 0xE007Fu})
    EXPECT_EQ(Fault(kName, "Bob" + U(cp)), TextFault::kTag) << "U+" << std::hex << cp;
  EXPECT_NE(Fault(kName, "Bob" + U(0xE0080)), TextFault::kTag) << "U+E0080 is past the tag block";
}

TEST(TextPolicy, NamesMayNotBeBlank) {
  for (std::string s : {std::string(" "), std::string("    "), U(0x3000), U(0xA0) + U(0xA0), U(0x2003) + " ",
                        U(0x3164),  // HANGUL FILLER, the classic invisible name
                        U(0x115F) + U(0x1160), U(0xFFA0), U(0x00AD), U(0xFE0F), U(0x180E)}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(Fault(kName, s), TextFault::kBlank);
    EXPECT_EQ(Fault(kOptionalName, s), TextFault::kBlank) << "an optional name is empty or shows something";
  }
  EXPECT_EQ(Fault(kName, U(0x2800)), TextFault::kNone) << "a braille blank is a braille character";
  EXPECT_EQ(Fault(kName, " a "), TextFault::kNone);
  EXPECT_EQ(Fault(kName, U(0x3164) + "x"), TextFault::kNone);
  EXPECT_EQ(Fault(kName, ""), TextFault::kTooShort);
  EXPECT_EQ(Fault(kOptionalName, ""), TextFault::kNone);
}

TEST(TextPolicy, NormalizesToNfc) {
  std::string s = "caf" + std::string("e\xCC\x81");  // e + U+0301 COMBINING ACUTE ACCENT
  EXPECT_EQ(NormalizeTextFault(kMessage, &s), TextFault::kNone);
  EXPECT_EQ(s, "caf\xC3\xA9");  // é, U+00E9

  s = U(0x212B);  // ANGSTROM SIGN: a singleton, NFC is U+00C5
  EXPECT_EQ(NormalizeTextFault(kName, &s), TextFault::kNone);
  EXPECT_EQ(s, U(0xC5));

  s = U(0x1100) + U(0x1161) + U(0x11A8);  // conjoining jamo G, A, G
  EXPECT_EQ(NormalizeTextFault(kName, &s), TextFault::kNone);
  EXPECT_EQ(s, U(0xAC01));  // 각

  s = "a" + U(0x0323) + U(0x0302);  // marks in non-canonical order: ậ composes to U+1EAD
  EXPECT_EQ(NormalizeTextFault(kMessage, &s), TextFault::kNone);
  EXPECT_EQ(s, U(0x1EAD));

  s = U(0x0958);  // a composition exclusion: NFC is its decomposition
  EXPECT_EQ(NormalizeTextFault(kMessage, &s), TextFault::kNone);
  EXPECT_EQ(s, U(0x0915) + U(0x093C));

  EXPECT_EQ(ToNfc("e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(ToNfc(""), "");
}

TEST(TextPolicy, LengthsAreCountedAfterNormalization) {
  const TextRule five{TextKind::kName, 1, 5};
  std::string s;
  for (int i = 0; i < 5; ++i) s += "e\xCC\x81";  // 10 code points in, 5 after NFC
  EXPECT_EQ(NormalizeTextFault(five, &s), TextFault::kNone);
  EXPECT_EQ(s.size(), 10u) << "five é of 2 bytes";
  s = U(0x0958) + U(0x0958) + U(0x0958);  // 3 code points in, 6 after NFC
  EXPECT_EQ(NormalizeTextFault(five, &s), TextFault::kTooLong);
  EXPECT_EQ(s, U(0x0958) + U(0x0958) + U(0x0958)) << "a refused text is left as it was";
  EXPECT_EQ(Fault(five, "你好你好你"), TextFault::kNone);
  EXPECT_EQ(Fault(five, "你好你好你好"), TextFault::kTooLong);
  EXPECT_EQ(Fault(five, "abcde"), TextFault::kNone);
  EXPECT_EQ(Fault(five, "abcdef"), TextFault::kTooLong);
  EXPECT_EQ(Fault({TextKind::kName, 3, 5}, "ab"), TextFault::kTooShort);
}

TEST(TextPolicy, AsciiAndNfcTextIsNotCopied) {
  std::string s(4000, 'x');
  const char* before = s.data();
  EXPECT_EQ(NormalizeTextFault(kMessage, &s), TextFault::kNone);
  EXPECT_EQ(s.data(), before);
  EXPECT_TRUE(IsQuickNfc("plain"));
  EXPECT_TRUE(IsQuickNfc("你好" + U(0x1F600) + "caf\xC3\xA9 " + U(0xAC01)));  // precomposed é and 각 are NFC
  EXPECT_FALSE(IsQuickNfc("e\xCC\x81"));
  EXPECT_FALSE(IsQuickNfc(U(0x212B)));
  EXPECT_FALSE(IsQuickNfc(U(0xAC00) + U(0x11A8)));  // 가 + final jamo composes to 각
}

// The quick check is sound: every code point it calls Yes is its own NFC, nothing that composes
// onto a preceding character (the last part of a primary composite's decomposition) is Yes, and on
// random strings of the characters that matter (marks of every combining class, jamo, composites,
// Indic two-part vowels) a Yes answer always agrees with full normalization.
TEST(TextPolicy, QuickCheckYesCodePointsAreTheirOwnNfc) {
  size_t yes = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || !NfcQuickCheckYes(cp)) continue;
    ++yes;
    const std::string one = U(cp);
    ASSERT_EQ(ToNfc(one), one) << "U+" << std::hex << cp;
  }
  EXPECT_GT(yes, 1000000u) << "almost every code point is Yes";
  for (uint32_t cp : {0x0301u, 0x0308u, 0x0323u, 0x1161u, 0x11A8u, 0x0B3Eu, 0x0CD5u, 0x3099u, 0x212Bu, 0x0958u})
    EXPECT_FALSE(NfcQuickCheckYes(cp)) << "U+" << std::hex << cp;
  for (uint32_t cp : {0x00E9u, 0xAC00u, 0xAC01u, 0x1100u, 0x094Du, 0x4E00u, 0x1F600u})
    EXPECT_TRUE(NfcQuickCheckYes(cp)) << "U+" << std::hex << cp;
}

TEST(TextPolicy, NothingThatComposesOntoAPredecessorIsQuickCheckYes) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    utf8proc_int32_t d[8];
    int bound = 0;
    const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), d, 8, UTF8PROC_DECOMPOSE, &bound);
    ASSERT_GT(n, 0);
    if (n < 2 || ToNfc(U(cp)) != U(cp)) continue;  // not a primary composite
    EXPECT_FALSE(NfcQuickCheckYes(static_cast<uint32_t>(d[n - 1])))
        << "U+" << std::hex << d[n - 1] << " composes onto a starter (U+" << cp << ")";
  }
}

TEST(TextPolicy, QuickCheckAgreesWithFullNormalizationOnRandomText) {
  std::vector<uint32_t> pool{'a', 'e', 'o', 'u', 'A', ' ', 0xE9, 0xC5, 0x212B, 0x0958, 0x4E00, 0x1F600, 0xAC00, 0xAC01};
  auto add = [&](uint32_t from, uint32_t to) {
    for (uint32_t cp = from; cp <= to; ++cp) pool.push_back(cp);
  };
  add(0x0300, 0x036F);  // combining diacritics, many combining classes
  add(0x0900, 0x097F);  // Devanagari: nukta, virama, vowel signs
  add(0x0B00, 0x0DFF);  // Oriya .. Sinhala: two-part vowels that compose
  add(0x0E30, 0x0E4E);  // Thai marks
  add(0x0F40, 0x0FBC);  // Tibetan, with composition exclusions
  add(0x1100, 0x1112);  // leading jamo
  add(0x1161, 0x1175);  // vowel jamo
  add(0x11A8, 0x11C2);  // trailing jamo
  add(0x1E00, 0x1E20);  // Latin extended additional
  add(0x1F00, 0x1F20);  // Greek extended
  add(0x3099, 0x309A);  // kana voicing marks
  add(0x304B, 0x3050);  // kana that take them
  std::mt19937 rng(1);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::uniform_int_distribution<int> len(1, 5);
  size_t quick = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    for (int k = len(rng); k > 0; --k) s += U(pool[pick(rng)]);
    if (!IsQuickNfc(s)) continue;
    ++quick;
    ASSERT_EQ(ToNfc(s), s) << "the quick check said Yes to text that is not NFC";
  }
  EXPECT_GT(quick, 10000u) << "the sample hardly exercised the Yes answer";
}

TEST(TextPolicy, ErrorsNameTheFieldAndTheRuleButNeverTheText) {
  std::string s = "evil\x1b[2J";
  Status st = NormalizeText("display name", kName, &s);
  EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(st.message().rfind("display name ", 0), 0u) << st.message();
  EXPECT_NE(st.message().find("control"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("evil"), std::string::npos) << st.message();

  s = "ad" + U(0x202E) + "nimda";
  st = NormalizeText("group name", kOptionalName, &s);
  EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(st.message().find("bidirectional"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("nimda"), std::string::npos) << st.message();

  s = U(0x3164);
  EXPECT_NE(NormalizeText("greeting", kOptionalName, &s).message().find("whitespace"), std::string::npos);
  s = "";
  EXPECT_EQ(NormalizeText("display name", kName, &s).message(), "display name must not be empty");
  s = std::string(33, 'a');
  EXPECT_EQ(NormalizeText("display name", kName, &s).message(), "display name must be 1 to 32 characters");
  s = std::string(51, 'a');
  EXPECT_EQ(NormalizeText("greeting", kOptionalName, &s).message(), "greeting must be at most 50 characters");
  s = "fine";
  EXPECT_TRUE(NormalizeText("greeting", kOptionalName, &s).ok());
}

TEST(TextPolicy, UrlsMustBeHttps) {
  for (const char* ok : {"https://media.example.com/i/9f8e7d.jpg", "HTTPS://Media.Example.COM/x", "https://x/y.png",
                         "https://1.2.3.4:8443/a?b=c&d=e#f", "https://[2001:db8::1]/v.m4a", "https://e.com",
                         "https://e.com/a%20b/~user/(1)", "https://e.com/p@th"}) {
    EXPECT_TRUE(CheckHttpsUrl("media url", ok, 2048, true).ok()) << ok;
  }
  for (const char* bad : {"javascript:alert(1)",
                          "JavaScript://%0aalert(1)",
                          "file:///etc/passwd",
                          "http://e.com/x",
                          "data:text/html,<b>hi</b>",
                          "ftp://e.com/x",
                          "//e.com/x",
                          "e.com/x",
                          "https:e.com",
                          "https://",
                          "https:///x",
                          "https://?q",
                          "https://user:pw@e.com/x",
                          "https://e.com@evil.com",
                          "https://e.com/a b",
                          " https://e.com",
                          "https://e.com/\x1b[2J",
                          "https://e.com\\@evil.com",
                          "https://e.com/caf\xC3\xA9",
                          "https://e.com:0/",
                          "https://e.com:65536/",
                          "https://e.com:/",
                          "https://e.com:8a/",
                          "https://e.com/%zz",
                          "https://e.com/%4",
                          "https://-e.com/",
                          "https://e_vil.com/",
                          "https://[::1/",
                          "https://e.com/\"><script>"}) {
    Status st = CheckHttpsUrl("media url", bad, 2048, true);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(st.message().rfind("media url ", 0), 0u) << st.message();
  }
  EXPECT_EQ(CheckHttpsUrl("media url", "", 2048, true).code(), v1::INVALID_ARGUMENT);
  EXPECT_TRUE(CheckHttpsUrl("media thumbnail_url", "", 2048, false).ok());
  const std::string long_url = "https://e.com/" + std::string(2048 - 14, 'a');
  EXPECT_TRUE(CheckHttpsUrl("media url", long_url, 2048, true).ok());
  EXPECT_FALSE(CheckHttpsUrl("media url", long_url + "a", 2048, true).ok());
}

}  // namespace
}  // namespace chat
