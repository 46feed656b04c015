#include "chat_service/validation.h"

#include <cmath>

#include "common/status.h"
#include "common/utf8.h"

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
bool ShortText(const std::string& s) {
  const auto cps = Utf8CodePoints(s);
  return cps && *cps <= kMaxShortFieldChars;
}
}  // namespace

Status ValidateUserContent(const v1::MessageContent& content, const Limits& limits) {
  switch (content.content_case()) {
    case v1::MessageContent::CONTENT_NOT_SET:
      return InvalidArgument("message content is required");
    case v1::MessageContent::kText: {
      const auto cps = Utf8CodePoints(content.text().text());
      if (!cps) return InvalidArgument("text must be valid UTF-8");
      if (*cps == 0) return InvalidArgument("text must not be empty");
      if (*cps > limits.chat.max_text_chars)
        return InvalidArgument("text is longer than " + std::to_string(limits.chat.max_text_chars) + " characters");
      return OkStatus();
    }
    case v1::MessageContent::kMedia: {
      const auto& m = content.media();
      if (m.kind() == v1::MEDIA_KIND_UNSPECIFIED || !v1::MediaKind_IsValid(m.kind()))
        return InvalidArgument("media kind is required");
      if (m.url().empty() || m.url().size() > kMaxUrlChars)
        return InvalidArgument("media url must be 1 to 2048 characters");
      if (m.thumbnail_url().size() > kMaxUrlChars)
        return InvalidArgument("media thumbnail_url must be at most 2048 characters");
      if (!ShortText(m.mime_type()) || !ShortText(m.file_name()))
        return InvalidArgument("media mime_type and file_name must be at most 256 characters");
      return OkStatus();
    }
    case v1::MessageContent::kLocation: {
      const auto& l = content.location();
      if (!std::isfinite(l.latitude()) || l.latitude() < -90 || l.latitude() > 90)
        return InvalidArgument("latitude must be between -90 and 90");
      if (!std::isfinite(l.longitude()) || l.longitude() < -180 || l.longitude() > 180)
        return InvalidArgument("longitude must be between -180 and 180");
      if (!ShortText(l.label())) return InvalidArgument("location label must be at most 256 characters");
      return OkStatus();
    }
    case v1::MessageContent::kContactCard:
      if (content.contact_card().user_id() == 0) return InvalidArgument("contact card needs a user_id");
      return OkStatus();
    case v1::MessageContent::kSystem:
      return InvalidArgument("system messages are written by the server only");
  }
  return InvalidArgument("unknown message content");
}

}  // namespace chat::chat_service
