#pragma once
// Pure input checks for chat requests. No I/O; safe on any thread.
#include <grpcpp/support/status.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "chat/v1/client.pb.h"
#include "common/config.h"

namespace chat::chatsvc {

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF); stores the number of
// code points in *code_points when given.
bool IsValidUtf8(std::string_view s, size_t* code_points = nullptr);

// Cuts valid UTF-8 `s` to its first `max_code_points` code points (never inside a code point).
void TruncateUtf8(std::string* s, size_t max_code_points);

// client_msg_id: 1..limits.max_client_msg_id_chars printable ASCII characters.
grpc::Status ValidateClientMsgId(std::string_view id, const Limits& limits);

// The message body a user may send: exactly one of text/media/location/contact_card, within the
// limits. System notices are written by the server only and are rejected here.
grpc::Status ValidateUserContent(const v1::MessageContent& content, const Limits& limits);

}  // namespace chat::chatsvc
