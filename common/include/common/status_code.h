#pragma once
// The cluster's one set of status codes, as the client protocol spells them (docs/protocol.md §4).
// Core: no gRPC. The grpc::Status helpers of the services are in common/status.h (chat_grpc).
#include "chat/v1/client.pb.h"

namespace chat {

using v1::StatusCode;

// WebSocket close codes the servers send with a KickedEvent (docs/protocol.md §4.3).
inline constexpr uint32_t kCloseKicked = 4010;        // presence: beyond max_sessions_per_user
inline constexpr uint32_t kCloseSessionEnded = 4011;  // the token's session was ended (log-out, refresh, deletion)

// "INVALID_ARGUMENT", ...; "INTERNAL" for a value outside the enum.
const char* StatusName(StatusCode code);

}  // namespace chat
