#pragma once
// The two wire encodings of the client protocol, chosen by WebSocket subprotocol.
// Pure functions; safe from any thread.
#include <string>
#include <string_view>

#include "chat/v1/client.pb.h"

namespace chat {

enum class WireEncoding { kProto, kJson };

inline constexpr std::string_view kSubprotocolProto = "chat.v1.proto";
inline constexpr std::string_view kSubprotocolJson = "chat.v1.json";

// Picks the encoding from a Sec-WebSocket-Protocol offer list ("a, b"); proto wins if both are
// offered. Returns false if neither is offered.
bool ChooseSubprotocol(std::string_view offered, WireEncoding* out);
std::string_view SubprotocolName(WireEncoding enc);

// On failure returns false and a client-facing reason in *error.
bool DecodeClientFrame(std::string_view data, WireEncoding enc, v1::ClientFrame* out, std::string* error);
bool DecodeServerFrame(std::string_view data, WireEncoding enc, v1::ServerFrame* out, std::string* error);
std::string EncodeServerFrame(const v1::ServerFrame& frame, WireEncoding enc);
std::string EncodeClientFrame(const v1::ClientFrame& frame, WireEncoding enc);

}  // namespace chat
