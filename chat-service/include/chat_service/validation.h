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
// limits. System notices are written by the server only and are rejected here.
Status ValidateUserContent(const v1::MessageContent& content, const Limits& limits);

}  // namespace chat::chat_service
