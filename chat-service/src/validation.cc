#include "chat_service/validation.h"

#include <cmath>

#include "common/status.h"
#include "common/text_policy.h"

namespace chat::chat_service {

namespace {
constexpr size_t kMaxUrlChars = 2048;
constexpr size_t kMaxShortFieldChars = 256;  // mime type, file name, location label
}  // namespace

Status ValidateClientMsgId(std::string_view id, const Limits& limits) {
  if (id.empty() || id.size() > limits.chat.max_client_msg_id_chars)
    return InvalidArgument("client_msg_id must be 1 to " + std::to_string(limits.chat.max_client_msg_id_chars) +
                           " characters");
  for (char c : id)
    if (c < 0x20 || c > 0x7E) return InvalidArgument("client_msg_id must be printable ASCII");
  return OkStatus();
}

namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool IsRestrictedNameChar(char c) {  // RFC 6838 restricted-name-chars
  static constexpr std::string_view kMarks = "!#$&-^_.+";
  return IsAlnum(c) || kMarks.find(c) != std::string_view::npos;
}

bool IsRestrictedName(std::string_view s) {
  if (s.empty() || s.size() > 127 || !IsAlnum(s[0])) return false;  // restricted-name-first
  for (char c : s)
    if (!IsRestrictedNameChar(c)) return false;
  return true;
}

}  // namespace

Status ValidateMimeType(std::string_view m) {
  if (m.empty()) return OkStatus();
  const std::string rule = "media mime_type must be type/subtype (e.g. image/jpeg), at most " +
                           std::to_string(kMaxShortFieldChars) + " printable ASCII characters";
  if (m.size() > kMaxShortFieldChars) return InvalidArgument(rule);
  for (char c : m)
    if (c < 0x20 || c > 0x7E) return InvalidArgument(rule);
  const size_t semi = m.find(';');
  const std::string_view type_subtype = m.substr(0, semi);
  const size_t slash = type_subtype.find('/');
  if (slash == std::string_view::npos || !IsRestrictedName(type_subtype.substr(0, slash)) ||
      !IsRestrictedName(type_subtype.substr(slash + 1)))
    return InvalidArgument(rule);
  return OkStatus();
}

Status ValidateUserContent(v1::MessageContent* content, const Limits& limits) {
  switch (content->content_case()) {
    case v1::MessageContent::CONTENT_NOT_SET:
      return InvalidArgument("message content is required");
    case v1::MessageContent::kText:
      return NormalizeText("text", {TextKind::kMessage, 1, limits.chat.max_text_chars},
                           content->mutable_text()->mutable_text());
    case v1::MessageContent::kMedia: {
      v1::MediaContent* m = content->mutable_media();
      if (m->kind() == v1::MEDIA_KIND_UNSPECIFIED || !v1::MediaKind_IsValid(m->kind()))
        return InvalidArgument("media kind is required");
      if (auto st = CheckHttpsUrl("media url", m->url(), kMaxUrlChars, /*required=*/true); !st.ok()) return st;
      if (auto st = CheckHttpsUrl("media thumbnail_url", m->thumbnail_url(), kMaxUrlChars, /*required=*/false);
          !st.ok())
        return st;
      if (auto st = ValidateMimeType(m->mime_type()); !st.ok()) return st;
      return NormalizeText("media file_name", {TextKind::kName, 0, kMaxShortFieldChars}, m->mutable_file_name());
    }
    case v1::MessageContent::kLocation: {
      v1::LocationContent* l = content->mutable_location();
      if (!std::isfinite(l->latitude()) || l->latitude() < -90 || l->latitude() > 90)
        return InvalidArgument("latitude must be between -90 and 90");
      if (!std::isfinite(l->longitude()) || l->longitude() < -180 || l->longitude() > 180)
        return InvalidArgument("longitude must be between -180 and 180");
      return NormalizeText("location label", {TextKind::kName, 0, kMaxShortFieldChars}, l->mutable_label());
    }
    case v1::MessageContent::kContactCard:
      if (content->contact_card().user_id() == 0) return InvalidArgument("contact card needs a user_id");
      return OkStatus();
    case v1::MessageContent::kSystem:
      return InvalidArgument("system messages are written by the server only");
  }
  return InvalidArgument("unknown message content");
}

}  // namespace chat::chat_service
