#include "account/validation.h"

#include "common/text_policy.h"

namespace chat::account {

bool ValidPhone(std::string_view p) {
  if (p.size() < 8 || p.size() > 16 || p[0] != '+' || p[1] < '1' || p[1] > '9') return false;
  for (size_t i = 2; i < p.size(); ++i)
    if (p[i] < '0' || p[i] > '9') return false;
  return true;
}

Status NormalizeDisplayName(std::string* name, size_t max_chars) {
  return NormalizeText("display name", {TextKind::kName, 1, max_chars}, name);
}

Status NormalizeGreeting(std::string* greeting, size_t max_chars) {
  return NormalizeText("greeting", {TextKind::kName, 0, max_chars}, greeting);
}

Status NormalizeRemark(std::string* remark, size_t max_chars) {
  return NormalizeText("remark", {TextKind::kName, 0, max_chars}, remark);
}

bool ValidMediaId(std::string_view id) {
  if (id.size() < 16 || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

bool ValidHandle(std::string_view h) {
  if (h.size() < kMinHandleChars || h.size() > kMaxHandleChars) return false;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(h[0])) return false;
  for (char c : h)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') return false;
  return true;
}

bool ReservedHandle(std::string_view h) {
  static constexpr std::string_view kPrefixes[] = {"u_",     "admin",  "official", "support",   "system",
                                                   "wechat", "weixin", "security", "moderator", "deleted"};
  static constexpr std::string_view kWords[] = {"everyone", "anonymous", "undefined", "nobody"};
  for (auto p : kPrefixes)
    if (h.substr(0, p.size()) == p) return true;
  for (auto w : kWords)
    if (h == w) return true;
  return false;
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
