#pragma once
// One set of status codes across the cluster. Inside services, expected failures are grpc::Status
// values whose code maps 1:1 onto chat::v1::StatusCode; the gateway converts them for clients.
#include <grpcpp/support/status.h>

#include <string>

#include "chat/v1/client.pb.h"
#include "common/status_code.h"

namespace chat {

grpc::StatusCode ToGrpc(StatusCode code);
StatusCode FromGrpc(grpc::StatusCode code);

inline grpc::Status Error(StatusCode code, std::string message) {
  return grpc::Status(ToGrpc(code), std::move(message));
}
inline grpc::Status InvalidArgument(std::string m) { return Error(v1::INVALID_ARGUMENT, std::move(m)); }
inline grpc::Status PermissionDenied(std::string m) { return Error(v1::PERMISSION_DENIED, std::move(m)); }
inline grpc::Status NotFound(std::string m) { return Error(v1::NOT_FOUND, std::move(m)); }
inline grpc::Status AlreadyExists(std::string m) { return Error(v1::ALREADY_EXISTS, std::move(m)); }
inline grpc::Status FailedPrecondition(std::string m) { return Error(v1::FAILED_PRECONDITION, std::move(m)); }
inline grpc::Status ResourceExhausted(std::string m) { return Error(v1::RESOURCE_EXHAUSTED, std::move(m)); }
inline grpc::Status Unavailable(std::string m) { return Error(v1::UNAVAILABLE, std::move(m)); }
inline grpc::Status Unauthenticated(std::string m) { return Error(v1::UNAUTHENTICATED, std::move(m)); }
inline grpc::Status Internal(std::string m) { return Error(v1::INTERNAL, std::move(m)); }

}  // namespace chat
