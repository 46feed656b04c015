#include "chat_service/validation.h"

#include <cmath>

#include "common/status.h"

namespace chat::chatsvc {

namespace {
constexpr size_t kMaxUrlChars = 2048;
constexpr size_t kMaxShortFieldChars = 256;  // mime type, file name, location label
}  // namespace

bool IsValidUtf8(std::string_view s, size_t* code_points) {
  size_t count = 0;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
    ++count;
  }
  if (code_points) *code_points = count;
  return true;
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

grpc::Status ValidateClientMsgId(std::string_view id, const Limits& limits) {
  if (id.empty() || id.size() > limits.max_client_msg_id_chars)
    return InvalidArgument("client_msg_id must be 1 to " + std::to_string(limits.max_client_msg_id_chars) +
                           " characters");
  for (char c : id)
    if (c < 0x20 || c > 0x7E) return InvalidArgument("client_msg_id must be printable ASCII");
  return grpc::Status::OK;
}

namespace {
bool ShortText(const std::string& s) {
  size_t cps = 0;
  return IsValidUtf8(s, &cps) && cps <= kMaxShortFieldChars;
}
}  // namespace

grpc::Status ValidateUserContent(const v1::MessageContent& content, const Limits& limits) {
  switch (content.content_case()) {
    case v1::MessageContent::CONTENT_NOT_SET:
      return InvalidArgument("message content is required");
    case v1::MessageContent::kText: {
      size_t cps = 0;
      if (!IsValidUtf8(content.text().text(), &cps)) return InvalidArgument("text must be valid UTF-8");
      if (cps == 0) return InvalidArgument("text must not be empty");
      if (cps > limits.max_text_chars)
        return InvalidArgument("text is longer than " + std::to_string(limits.max_text_chars) + " characters");
      return grpc::Status::OK;
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
      return grpc::Status::OK;
    }
    case v1::MessageContent::kLocation: {
      const auto& l = content.location();
      if (!std::isfinite(l.latitude()) || l.latitude() < -90 || l.latitude() > 90)
        return InvalidArgument("latitude must be between -90 and 90");
      if (!std::isfinite(l.longitude()) || l.longitude() < -180 || l.longitude() > 180)
        return InvalidArgument("longitude must be between -180 and 180");
      if (!ShortText(l.label())) return InvalidArgument("location label must be at most 256 characters");
      return grpc::Status::OK;
    }
    case v1::MessageContent::kContactCard:
      if (content.contact_card().user_id() == 0) return InvalidArgument("contact card needs a user_id");
      return grpc::Status::OK;
    case v1::MessageContent::kSystem:
      return InvalidArgument("system messages are written by the server only");
  }
  return InvalidArgument("unknown message content");
}

}  // namespace chat::chatsvc
