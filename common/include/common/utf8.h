#pragma once
// The one UTF-8 decoder of the tree (RFC 3629): overlong forms, surrogates (U+D800..U+DFFF), values
// above U+10FFFF, stray continuation bytes and truncated sequences are all invalid. Every validator
// of client text (codec, WebSocket reader, account, chat and group rules) goes through it.
// Pure functions; thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chat {

// Decodes the code point starting at s[*i] into *cp and advances *i past it. False (nothing
// advanced) when the bytes there are not valid UTF-8. Requires *i < s.size().
bool DecodeUtf8(std::string_view s, size_t* i, uint32_t* cp);

// Calls fn(code_point) for every code point of s in order while fn returns true. Returns false
// when s is not valid UTF-8 (fn has then seen the valid prefix), true otherwise (also when fn
// stopped early).
template <typename Fn>
bool ForEachCodePoint(std::string_view s, Fn&& fn) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    if (!DecodeUtf8(s, &i, &cp)) return false;
    if (!fn(cp)) return true;
  }
  return true;
}

// Number of code points of s, or nullopt when s is not valid UTF-8.
std::optional<size_t> Utf8CodePoints(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return Utf8CodePoints(s).has_value(); }

// Code points of text already known to be valid UTF-8 (counts lead bytes; no validation).
size_t Utf8Length(std::string_view s);

// Cuts valid UTF-8 to at most max_code_points code points, never inside a code point.
void TruncateUtf8(std::string* s, size_t max_code_points);

// `s` made safe to print on a terminal as one line: every C0 control (newline and tab included, as
// "\n" and "\t"), DEL, C1 control and bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A..U+202E, U+2066..U+2069) becomes a visible escape ("\x1b", "\u{202e}"), and so does every
// byte that is not valid UTF-8; a backslash is doubled. So text from other users can neither move the
// cursor, clear the screen, reorder what follows, nor start a line of its own.
std::string EscapeForTerminal(std::string_view s);

// The length of the longest prefix of s of at most max_bytes bytes that does not end inside a
// code point (for byte budgets such as a WebSocket close reason).
size_t Utf8PrefixBytes(std::string_view s, size_t max_bytes);

// True when s holds a C0 control (U+0000..U+001F), DEL or a C1 control (U+0080..U+009F).
bool HasControlChars(std::string_view s);
inline bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

}  // namespace chat
