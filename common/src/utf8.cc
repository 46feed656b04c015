#include "common/utf8.h"

#include <cstdio>

namespace chat {

bool DecodeUtf8(std::string_view s, size_t* i, uint32_t* cp) {
  const size_t at = *i;
  const size_t left = s.size() - at;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  const uint32_t c = p[0];
  auto cont = [&](size_t k) { return (p[k] & 0xC0) == 0x80; };
  if (c < 0x80) {
    *cp = c;
    *i = at + 1;
    return true;
  }
  if (c < 0xC2) return false;  // a continuation byte as lead, or an overlong 2-byte form (C0, C1)
  if (c < 0xE0) {
    if (left < 2 || !cont(1)) return false;
    *cp = ((c & 0x1F) << 6) | (p[1] & 0x3F);
    *i = at + 2;
    return true;
  }
  if (c < 0xF0) {
    if (left < 3 || !cont(1) || !cont(2)) return false;
    const uint32_t v = ((c & 0x0F) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return false;  // overlong, surrogate
    *cp = v;
    *i = at + 3;
    return true;
  }
  if (c < 0xF5) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return false;
    const uint32_t v = ((c & 0x07) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return false;  // overlong, above U+10FFFF
    *cp = v;
    *i = at + 4;
    return true;
  }
  return false;  // F5..FF
}

std::optional<size_t> Utf8CodePoints(std::string_view s) {
  size_t count = 0;
  if (!ForEachCodePoint(s, [&](uint32_t) { return ++count, true; })) return std::nullopt;
  return count;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string EscapeForTerminal(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &i, &cp)) {
      const auto b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
      ++i;
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f) {
      out += "\\x";
      out += kHex[cp >> 4];
      out += kHex[cp & 15];
    } else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  return out;
}

void TruncateUtf8(std::string* s, size_t max_code_points) {
  size_t seen = 0;
  for (size_t i = 0; i < s->size(); ++i) {
    if ((static_cast<unsigned char>((*s)[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (seen == max_code_points) {
      s->resize(i);
      return;
    }
    ++seen;
  }
}

size_t Utf8PrefixBytes(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s.size();
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

bool HasControlChars(std::string_view s) {
  // Byte-wise: C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9F)
      return true;
  }
  return false;
}

}  // namespace chat
