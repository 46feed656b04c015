#pragma once
// Pure input checks for chat requests. No I/O; safe on any thread.
#include <cstddef>
#include <string>
#include <string_view>

#include "chat/v1/client.pb.h"
#include "common/config.h"
#include "common/error.h"

namespace chat::chat_service {

// client_msg_id: 1..limits.chat.max_client_msg_id_chars printable ASCII characters.
Status ValidateClientMsgId(std::string_view id, const Limits& limits);

// The message body a user may send: exactly one of text/media/location/contact_card, within the
// limits and the text policy (common/text_policy.h: text is message text; file_name and location
// label are names; url and thumbnail_url are https URLs; mime_type is "type/subtype[;params]").
// On success the text fields of *content are replaced with their NFC form, which is what is stored.
// System notices are written by the server only and are rejected here.
Status ValidateUserContent(v1::MessageContent* content, const Limits& limits);

// MediaContent.mime_type: empty, or type "/" subtype (RFC 6838 restricted names, each 1..127
// characters) optionally followed by ";" parameters of printable ASCII; at most 256 characters.
Status ValidateMimeType(std::string_view mime_type);

}  // namespace chat::chat_service
