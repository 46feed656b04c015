#pragma once
// The boundary between typed errors (common/error.h) and gRPC, and the only place that converts
// between them: a handler's Status leaves through Guarded, a peer's grpc::Status enters through
// PeerFailure (the peer failed: retryable, its message never leaks) or FromPeer (the caller branches
// on the peer's own verdict, e.g. a wrong shard).
#include <grpcpp/support/status.h>

#include <string>
#include <utility>

#include "common/error.h"

namespace chat {

grpc::StatusCode ToGrpc(StatusCode code);
StatusCode FromGrpc(grpc::StatusCode code);

// A Status as a gRPC reply: the code mapped 1:1, the message kept, a retry-after (when set) as the
// decimal milliseconds in the error details.
grpc::Status ToGrpcStatus(const Status& status);
// The retry-after a peer's refusal carries (ToGrpcStatus), 0 when none.
int64_t RetryAfterMs(const grpc::Status& status);
// A peer's reply as a Status, code and message kept (FromGrpc mapping).
Status FromPeer(const grpc::Status& peer);

// The failure of a call to another service, as this service's caller should see it: logged with the
// peer's code and message, then DEADLINE_EXCEEDED when the peer did not answer in time and
// UNAVAILABLE otherwise (both retryable); the peer's own message never leaks.
Status PeerFailure(const char* what, const grpc::Status& peer);

// A gRPC handler's body under the one guard (Guard, common/error.h), its verdict converted for gRPC.
template <typename Body>
grpc::Status Guarded(const char* what, Body&& body) {
  return ToGrpcStatus(Guard(what, std::forward<Body>(body)));
}

}  // namespace chat
