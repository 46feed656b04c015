#pragma once
// The one policy for text that users send (docs/protocol.md §5.2, "Text rules"). Every text field of
// every client request goes through NormalizeText with the kind of its field; every URL field goes
// through CheckHttpsUrl. The server stores and forwards the NFC form: a client that sends "e" +
// U+0301 gets "é" back in history and in events, and lengths are counted after normalization.
// Errors are INVALID_ARGUMENT naming the field and the rule; they never quote the text.
// Pure functions; thread-safe.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace chat {

enum class TextKind {
  // Message text: valid UTF-8; newline and tab are the only C0/C1 controls allowed (so ESC, NUL,
  // CR and DEL are refused). Bidi marks, zero-width joiners and tag characters are allowed: RTL
  // writers and emoji sequences (flags of regions, families) need them.
  kMessage,
  // Names and short labels (display name, group name, greeting, media file name, location label):
  // no control character at all (newline and tab included), no line or paragraph separator
  // (U+2028, U+2029), no bidi formatting character (U+061C, U+200E, U+200F, U+202A..U+202E,
  // U+2066..U+2069), no zero-width character (U+200B..U+200D, U+2060, U+FEFF) and no tag character
  // (U+E0000..U+E007F); when not empty, not blank (see IsBlankCodePoint). Leading and trailing
  // white space is trimmed (the stored form), and lengths count what is left.
  kName,
};

struct TextRule {
  TextKind kind = TextKind::kName;
  size_t min_chars = 0;  // code points of the NFC form; 0: may be empty
  size_t max_chars = 0;  // code points of the NFC form
};

// Checks *text against `rule` and, when it passes, replaces it with its NFC form. On failure *text
// is unchanged and the status is INVALID_ARGUMENT "<field> ...". Pure-ASCII text is already NFC
// and is never copied.
Status NormalizeText(std::string_view field, const TextRule& rule, std::string* text);

// What NormalizeText found wrong, for tests and callers that word their own errors.
enum class TextFault {
  kNone,
  kInvalidUtf8,
  kControl,    // a C0/C1 control or DEL not allowed for the kind (for names also U+2028, U+2029)
  kBidi,       // names: a bidi formatting character
  kZeroWidth,  // names: a zero-width character
  kTag,        // names: a tag character
  kBlank,      // names: only whitespace and invisible characters
  kTooShort,
  kTooLong,
};
// As NormalizeText, with the fault instead of a message.
TextFault NormalizeTextFault(const TextRule& rule, std::string* text);

// Builds the tables NormalizeText uses for non-ASCII text (tens of milliseconds, once per process)
// now rather than at the first such text. ServiceMain calls it at start-up. Thread-safe.
void PrepareTextPolicy();

// The NFC form of valid UTF-8 `s` (the same bytes when s is already NFC).
std::string ToNfc(std::string_view s);

// The NFC quick check of UAX #15 on valid UTF-8 `s`: true when s is certainly NFC (every code point
// has NFC_Quick_Check=Yes and the combining marks are in canonical order). False means "normalize
// to find out". Pure ASCII is always true.
bool IsQuickNfc(std::string_view s);
// NFC_Quick_Check=Yes for one code point, as derived from utf8proc's tables.
bool NfcQuickCheckYes(uint32_t cp);

// Unicode White_Space or Default_Ignorable_Code_Point (U+00AD soft hyphen, U+3164 HANGUL FILLER,
// U+FE0F variation selector, ...): a name made only of these shows as nothing.
bool IsBlankCodePoint(uint32_t cp);

// URL fields: an absolute "https://" URL (scheme in any case) with a host (a DNS name, an IPv4
// address or a bracketed IPv6 literal; no user info), an optional port 1..65535, and only the
// characters RFC 3986 allows unencoded (no space, no control, no backslash, no non-ASCII: percent-
// encode the rest); 1..max_chars characters, or empty when !required.
Status CheckHttpsUrl(std::string_view field, std::string_view url, size_t max_chars, bool required);

}  // namespace chat
