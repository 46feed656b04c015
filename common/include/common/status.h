#pragma once
// One set of status codes across the cluster. Inside services, expected failures are grpc::Status
// values whose code maps 1:1 onto chat::v1::StatusCode; the gateway converts them for clients.
#include <grpcpp/support/status.h>
#include <spdlog/spdlog.h>

#include <exception>
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

// The failure of a call to another service, as this service's caller should see it: logged with the
// peer's code and message, then DEADLINE_EXCEEDED when the peer did not answer in time and
// UNAVAILABLE otherwise (both retryable); the peer's own message never leaks.
grpc::Status PeerFailure(const char* what, const grpc::Status& peer);

// The one handler guard: runs a gRPC handler body; an exception that slipped through becomes
// INTERNAL "internal error" (logged with `what`, never leaked), so nothing escapes to gRPC.
template <typename Body>
grpc::Status Guarded(const char* what, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected error: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: unexpected non-standard exception", what);
  }
  return Internal("internal error");
}

}  // namespace chat
