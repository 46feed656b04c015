#include "common/status.h"

namespace chat {

grpc::StatusCode ToGrpc(StatusCode code) {
  switch (code) {
    case v1::OK:
      return grpc::StatusCode::OK;
    case v1::INVALID_ARGUMENT:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case v1::UNAUTHENTICATED:
      return grpc::StatusCode::UNAUTHENTICATED;
    case v1::PERMISSION_DENIED:
      return grpc::StatusCode::PERMISSION_DENIED;
    case v1::NOT_FOUND:
      return grpc::StatusCode::NOT_FOUND;
    case v1::ALREADY_EXISTS:
      return grpc::StatusCode::ALREADY_EXISTS;
    case v1::FAILED_PRECONDITION:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case v1::RESOURCE_EXHAUSTED:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case v1::UNAVAILABLE:
      return grpc::StatusCode::UNAVAILABLE;
    case v1::DEADLINE_EXCEEDED:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    default:
      return grpc::StatusCode::INTERNAL;
  }
}

StatusCode FromGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return v1::OK;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return v1::INVALID_ARGUMENT;
    case grpc::StatusCode::OUT_OF_RANGE:
      return v1::INVALID_ARGUMENT;
    case grpc::StatusCode::UNAUTHENTICATED:
      return v1::UNAUTHENTICATED;
    case grpc::StatusCode::PERMISSION_DENIED:
      return v1::PERMISSION_DENIED;
    case grpc::StatusCode::NOT_FOUND:
      return v1::NOT_FOUND;
    case grpc::StatusCode::ALREADY_EXISTS:
      return v1::ALREADY_EXISTS;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return v1::FAILED_PRECONDITION;
    case grpc::StatusCode::ABORTED:
      return v1::UNAVAILABLE;  // retryable conflict
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return v1::RESOURCE_EXHAUSTED;
    case grpc::StatusCode::UNAVAILABLE:
      return v1::UNAVAILABLE;
    case grpc::StatusCode::CANCELLED:
      return v1::UNAVAILABLE;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return v1::DEADLINE_EXCEEDED;
    default:
      return v1::INTERNAL;
  }
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  if (status.retry_after_ms() > 0)
    return grpc::Status(ToGrpc(status.code()), status.message(), std::to_string(status.retry_after_ms()));
  return grpc::Status(ToGrpc(status.code()), status.message());
}

int64_t RetryAfterMs(const grpc::Status& status) {
  const std::string& d = status.error_details();
  if (d.empty() || d.size() > 18) return 0;
  int64_t ms = 0;
  for (char c : d) {
    if (c < '0' || c > '9') return 0;
    ms = ms * 10 + (c - '0');
  }
  return ms;
}

Status FromPeer(const grpc::Status& peer) {
  if (peer.ok()) return OkStatus();
  return Status(FromGrpc(peer.error_code()), peer.error_message()).WithRetryAfter(RetryAfterMs(peer));
}

Status PeerFailure(const char* what, const grpc::Status& peer) {
  spdlog::warn("{} failed: {} {}", what, static_cast<int>(peer.error_code()), peer.error_message());
  if (peer.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return DeadlineExceeded("a backend service did not answer in time; retry");
  return Unavailable("a backend service is unavailable; retry");
}

}  // namespace chat
