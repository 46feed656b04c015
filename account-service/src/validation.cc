#include "account/validation.h"

namespace chat::account {

bool ValidPhone(std::string_view p) {
  if (p.size() < 8 || p.size() > 16 || p[0] != '+' || p[1] < '1' || p[1] > '9') return false;
  for (size_t i = 2; i < p.size(); ++i)
    if (p[i] < '0' || p[i] > '9') return false;
  return true;
}

std::optional<size_t> Utf8CodePoints(std::string_view s) {
  size_t count = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (b0 < 0x80) {
      len = 1;
      cp = b0;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
    } else {
      return std::nullopt;  // continuation byte as lead, C0/C1 overlong leads, F5..FF
    }
    if (i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return std::nullopt;
    if (cp >= 0xD800 && cp <= 0xDFFF) return std::nullopt;
    i += len;
    ++count;
  }
  return count;
}

namespace {
// True if `s` (already known to be valid UTF-8) contains C0, DEL or C1 control characters.
bool HasControlChars(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == 0x7F) return true;
    // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
    if (b == 0xC2 && i + 1 < s.size()) {
      const auto n = static_cast<unsigned char>(s[i + 1]);
      if (n >= 0x80 && n <= 0x9F) return true;
    }
  }
  return false;
}
}  // namespace

bool ValidText(std::string_view s, size_t min_chars, size_t max_chars) {
  auto n = Utf8CodePoints(s);
  if (!n || *n < min_chars || *n > max_chars) return false;
  return !HasControlChars(s);
}

bool ValidDisplayName(std::string_view name, size_t max_chars) { return ValidText(name, 1, max_chars); }

bool ValidGreeting(std::string_view greeting, size_t max_chars) { return ValidText(greeting, 0, max_chars); }

bool ValidHandle(std::string_view h) {
  if (h.size() < kMinHandleChars || h.size() > kMaxHandleChars) return false;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(h[0])) return false;
  for (char c : h)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') return false;
  return true;
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string MaskPhone(std::string_view phone) {
  if (phone.size() < 8) return std::string(phone.size(), '*');
  // Keep "+" and up to 2 prefix digits, and the last 4 digits.
  const size_t head = 3;
  const size_t tail = 4;
  std::string out(phone.substr(0, head));
  out.append(phone.size() - head - tail, '*');
  out.append(phone.substr(phone.size() - tail));
  return out;
}

}  // namespace chat::account
