#include "common/text_policy.h"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "common/utf8.h"

namespace chat {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

bool IsBidiFormat(uint32_t cp) {
  return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}
bool IsZeroWidth(uint32_t cp) { return (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF; }
bool IsTag(uint32_t cp) { return cp >= 0xE0000 && cp <= 0xE007F; }

// Unicode White_Space (PropList.txt).
bool IsWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Unicode Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15).
bool IsDefaultIgnorable(uint32_t cp) {
  if (cp < 0xAD) return false;
  return cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x115F || cp == 0x1160 || cp == 0x17B4 || cp == 0x17B5 ||
         (cp >= 0x180B && cp <= 0x180F) || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 || (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF ||
         cp == 0xFFA0 || (cp >= 0xFFF0 && cp <= 0xFFF8) || (cp >= 0x1BCA0 && cp <= 0x1BCA3) ||
         (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

// The rule one code point breaks for `kind`, kNone when it is allowed.
TextFault CodePointFault(TextKind kind, uint32_t cp) {
  if (kind == TextKind::kMessage)
    return IsControl(cp) && cp != '\n' && cp != '\t' ? TextFault::kControl : TextFault::kNone;
  if (IsControl(cp) || cp == 0x2028 || cp == 0x2029) return TextFault::kControl;
  if (cp < 0x061C) return TextFault::kNone;
  if (IsBidiFormat(cp)) return TextFault::kBidi;
  if (IsZeroWidth(cp)) return TextFault::kZeroWidth;
  if (IsTag(cp)) return TextFault::kTag;
  return TextFault::kNone;
}

// Per code point, two bits derived once per process from utf8proc's tables (tens of milliseconds, paid by
// the first non-ASCII text): NFC_Quick_Check=Yes, and a non-zero canonical combining class. A code
// point is not Yes when NFC changes it alone (singletons, composition exclusions, non-starter
// decompositions: Quick_Check=No) or when it is the second part of a primary composite, so a
// preceding character may compose with it (the combining marks and the medial and final jamo:
// Quick_Check=Maybe).
class NfcTable {
 public:
  NfcTable() : yes_(kWords, 0), ccc_(kWords, 0) {
    std::vector<uint32_t> seconds;
    for (uint32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // surrogates are not text
      const auto* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
      if (p->combining_class != 0) Set(&ccc_, cp);
      utf8proc_int32_t d[8];
      int boundclass = 0;
      const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), d, 8, UTF8PROC_DECOMPOSE, &boundclass);
      if (n == 1 && static_cast<uint32_t>(d[0]) == cp) {
        Set(&yes_, cp);  // no canonical decomposition
        continue;
      }
      if (n < 1 || n > 8 || !ComposesBack(cp)) continue;  // Quick_Check=No
      Set(&yes_, cp);                                     // a primary composite
      seconds.push_back(static_cast<uint32_t>(d[n - 1]));
    }
    for (uint32_t cp : seconds) yes_[cp >> 6] &= ~(uint64_t{1} << (cp & 63));  // Quick_Check=Maybe
  }
  bool Yes(uint32_t cp) const { return Get(yes_, cp); }
  bool Reorders(uint32_t cp) const { return Get(ccc_, cp); }

 private:
  static constexpr size_t kWords = (kMaxCodePoint + 1) / 64;
  static void Set(std::vector<uint64_t>* bits, uint32_t cp) { (*bits)[cp >> 6] |= uint64_t{1} << (cp & 63); }
  static bool Get(const std::vector<uint64_t>& bits, uint32_t cp) {
    return cp <= kMaxCodePoint && (bits[cp >> 6] >> (cp & 63)) & 1;
  }
  static bool ComposesBack(uint32_t cp) {
    uint8_t buf[4];
    const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    const std::string one(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
    return ToNfc(one) == one;
  }

  std::vector<uint64_t> yes_;
  std::vector<uint64_t> ccc_;
};

const NfcTable& Nfc() {
  static const NfcTable table;  // thread-safe initialization
  return table;
}

// The NFC quick check (UAX #15, section 9) over the code points of a text, fed one at a time.
class QuickCheck {
 public:
  explicit QuickCheck(const NfcTable& t) : t_(t) {}
  // False once the text may not be NFC (then it stays false).
  bool Feed(uint32_t cp) {
    if (!yes_) return false;
    uint8_t ccc = 0;
    if (t_.Reorders(cp)) ccc = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
    if ((ccc != 0 && last_ccc_ > ccc) || !t_.Yes(cp)) yes_ = false;
    last_ccc_ = ccc;
    return yes_;
  }
  bool yes() const { return yes_; }

 private:
  const NfcTable& t_;
  uint8_t last_ccc_ = 0;
  bool yes_ = true;
};

struct Scan {
  TextFault fault = TextFault::kNone;
  size_t chars = 0;
  bool quick_nfc = true;  // the NFC quick check said Yes: the text is NFC
  bool blank = true;      // every code point IsBlankCodePoint (names only)
};

// True when none of the 8 bytes of w is below 0x20, 0x7F or 0x80 and above: printable ASCII.
bool PrintableAscii8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;  // some byte < 0x20 (exact as a whole)
  const uint64_t x = w ^ (kOnes * 0x7F);
  const uint64_t del = (x - kOnes) & ~x & kHigh;  // some byte == 0x7F
  return ((w & kHigh) | below_space | del) == 0;
}

Scan ScanText(TextKind kind, std::string_view s) {
  Scan r;
  const bool name = kind == TextKind::kName;
  size_t i = 0;
  // ASCII is NFC, and C0 controls and DEL are its only refusals; eight bytes at a time while they
  // are printable.
  constexpr uint64_t kSpaces = 0x2020202020202020;
  for (uint64_t w; i + 8 <= s.size(); i += 8) {
    std::memcpy(&w, s.data() + i, 8);
    if (!PrintableAscii8(w)) break;
    if (w != kSpaces) r.blank = false;
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) break;
    if (c < 0x20 || c == 0x7F) {
      if (name || (c != '\n' && c != '\t')) {
        r.fault = TextFault::kControl;
        return r;
      }
    }
    r.blank = r.blank && c == ' ';  // the other ASCII White_Space are controls
  }
  r.chars = i;
  if (i == s.size()) return r;
  QuickCheck nfc(Nfc());
  while (i < s.size()) {
    uint32_t cp;
    if (!DecodeUtf8(s, &i, &cp)) {
      r.fault = TextFault::kInvalidUtf8;
      return r;
    }
    ++r.chars;
    if (TextFault f = CodePointFault(kind, cp); f != TextFault::kNone) {
      r.fault = f;
      return r;
    }
    nfc.Feed(cp);
    if (name && r.blank && !IsBlankCodePoint(cp)) r.blank = false;
  }
  r.quick_nfc = nfc.yes();
  return r;
}

std::string_view Rule(TextFault f, TextKind kind) {
  switch (f) {
    case TextFault::kInvalidUtf8:
      return "must be valid UTF-8";
    case TextFault::kControl:
      return kind == TextKind::kMessage
                 ? "may not contain control characters other than newline and tab (no ESC, NUL, CR, DEL or C1 "
                   "controls)"
                 : "may not contain control characters, newlines or tabs, or U+2028/U+2029";
    case TextFault::kBidi:
      return "may not contain bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, "
             "U+2066-U+2069)";
    case TextFault::kZeroWidth:
      return "may not contain zero-width characters (U+200B-U+200D, U+2060, U+FEFF)";
    case TextFault::kTag:
      return "may not contain tag characters (U+E0000-U+E007F)";
    case TextFault::kBlank:
      return "may not be only whitespace or invisible characters";
    default:
      return "";
  }
}

}  // namespace

void PrepareTextPolicy() { (void)Nfc(); }

bool NfcQuickCheckYes(uint32_t cp) { return cp < 0x80 || Nfc().Yes(cp); }

bool IsQuickNfc(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  if (i == s.size()) return true;
  QuickCheck nfc(Nfc());
  while (i < s.size()) {
    uint32_t cp;
    if (!DecodeUtf8(s, &i, &cp) || !nfc.Feed(cp)) return false;
  }
  return true;
}

bool IsBlankCodePoint(uint32_t cp) { return IsWhiteSpace(cp) || IsDefaultIgnorable(cp); }

std::string ToNfc(std::string_view s) {
  if (s.empty()) return {};
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  if (n == UTF8PROC_ERROR_NOMEM) throw std::bad_alloc();
  if (n < 0) throw std::invalid_argument(std::string("ToNfc: ") + utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

namespace {

// s without leading and trailing white space (IsWhiteSpace); s is valid UTF-8.
std::string_view TrimWhiteSpace(std::string_view s) {
  size_t begin = s.size(), end = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &i, &cp)) return s;
    if (IsWhiteSpace(cp)) continue;
    if (begin == s.size()) begin = at;
    end = i;
  }
  return begin >= end ? std::string_view() : s.substr(begin, end - begin);
}

}  // namespace

TextFault NormalizeTextFault(const TextRule& rule, std::string* text) {
  const Scan scan = ScanText(rule.kind, *text);
  if (scan.fault != TextFault::kNone) return scan.fault;
  if (rule.kind == TextKind::kName && scan.chars > 0 && scan.blank) return TextFault::kBlank;
  size_t chars = scan.chars;
  std::string nfc;
  bool changed = false;
  // Names allow no ASCII white space but ' ' (the rest are controls): only a space or a non-ASCII
  // byte at either end may need trimming.
  auto may_pad = [](char c) { return c == ' ' || static_cast<unsigned char>(c) >= 0x80; };
  if (rule.kind == TextKind::kName && !text->empty() && (may_pad(text->front()) || may_pad(text->back()))) {
    const std::string_view trimmed = TrimWhiteSpace(*text);
    if (trimmed.size() != text->size()) {
      nfc.assign(trimmed);
      changed = true;
      chars = Utf8Length(nfc);
    }
  }
  if (!scan.quick_nfc) {
    std::string composed = ToNfc(changed ? nfc : *text);
    if (composed != (changed ? nfc : *text)) {
      nfc = std::move(composed);
      changed = true;
    }
    if (changed) chars = Utf8Length(nfc);
  }
  if (chars == 0 && rule.min_chars > 0) return TextFault::kTooShort;
  if (chars < rule.min_chars) return TextFault::kTooShort;
  if (chars > rule.max_chars) return TextFault::kTooLong;
  if (changed) *text = std::move(nfc);
  return TextFault::kNone;
}

Status NormalizeText(std::string_view field, const TextRule& rule, std::string* text) {
  const TextFault f = NormalizeTextFault(rule, text);
  if (f == TextFault::kNone) return OkStatus();
  std::string m(field);
  if (f == TextFault::kTooShort || f == TextFault::kTooLong) {
    if (rule.min_chars == 0)
      m += " must be at most " + std::to_string(rule.max_chars) + " characters";
    else if (rule.min_chars == 1 && f == TextFault::kTooShort)
      m += " must not be empty";
    else
      m += " must be " + std::to_string(rule.min_chars) + " to " + std::to_string(rule.max_chars) + " characters";
    return InvalidArgument(m);
  }
  m += ' ';
  m += Rule(f, rule.kind);
  return InvalidArgument(m);
}

namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 3986 unreserved, gen-delims, sub-delims and '%'.
bool IsUriChar(char c) {
  static constexpr std::string_view kMarks = "-._~:/?#[]@!$&'()*+,;=%";
  return IsAlnum(c) || kMarks.find(c) != std::string_view::npos;
}

bool ValidHost(std::string_view h) {
  if (h.empty()) return false;
  if (h.front() == '[') {
    if (h.size() < 4 || h.back() != ']') return false;
    for (char c : h.substr(1, h.size() - 2))
      if (!IsHex(c) && c != ':' && c != '.') return false;
    return true;
  }
  if (h.front() == '.' || h.front() == '-') return false;
  for (char c : h)
    if (!IsAlnum(c) && c != '-' && c != '.') return false;
  return true;
}

bool ValidPort(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  uint32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v >= 1 && v <= 65535;
}

}  // namespace

Status CheckHttpsUrl(std::string_view field, std::string_view url, size_t max_chars, bool required) {
  const std::string f(field);
  if (url.empty()) return required ? InvalidArgument(f + " is required") : OkStatus();
  if (url.size() > max_chars)
    return InvalidArgument(f + " must be at most " + std::to_string(max_chars) + " characters");
  for (size_t i = 0; i < url.size(); ++i) {
    if (!IsUriChar(url[i]))
      return InvalidArgument(f +
                             " may contain only the characters RFC 3986 allows in a URL (no spaces, controls, "
                             "backslashes or non-ASCII: percent-encode them)");
    if (url[i] == '%' && (i + 2 >= url.size() || !IsHex(url[i + 1]) || !IsHex(url[i + 2])))
      return InvalidArgument(f + " has a '%' that is not followed by two hex digits");
  }
  constexpr std::string_view kScheme = "https://";
  bool https = url.size() > kScheme.size();
  for (size_t i = 0; https && i < kScheme.size(); ++i) {
    const char c = url[i] >= 'A' && url[i] <= 'Z' ? static_cast<char>(url[i] - 'A' + 'a') : url[i];
    https = c == kScheme[i];
  }
  if (!https) return InvalidArgument(f + " must be an absolute https:// URL (no other scheme is accepted)");
  std::string_view rest = url.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos)
    return InvalidArgument(f + " may not contain user info ('@' before the host)");
  std::string_view host = authority;
  std::string_view port;
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!ValidPort(port)) return InvalidArgument(f + " has an invalid port (1 to 65535)");
  }
  if (!ValidHost(host)) return InvalidArgument(f + " needs a host name or address after https://");
  return OkStatus();
}

}  // namespace chat
