#pragma once
// The cluster's one set of status codes, as the client protocol spells them (docs/protocol.md §4).
// Core: no gRPC. The grpc::Status helpers of the services are in common/status.h (chat_grpc).
#include "chat/v1/client.pb.h"

namespace chat {

using v1::StatusCode;

// "INVALID_ARGUMENT", ...; "INTERNAL" for a value outside the enum.
const char* StatusName(StatusCode code);

}  // namespace chat
