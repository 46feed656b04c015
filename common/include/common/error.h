#pragma once
// Typed errors inside services (core: no gRPC). An expected failure is a Status: one of the cluster's
// status codes (docs/protocol.md §4) and a message that is safe to show the client. Functions that
// produce a value on success return Result<T>. grpc::Status exists only at process boundaries:
// common/status.h converts a handler's Status on the way out (Guarded) and a peer's grpc::Status on
// the way in (PeerFailure, FromPeer), and nowhere else.
#include <spdlog/spdlog.h>

#include <cassert>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "common/status_code.h"

namespace chat {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == v1::OK; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // For a refusal that passes after a wait (a quota): the milliseconds until the same request would
  // pass; 0 when unknown or not applicable. Carried to the client as Reply.retry_after_ms.
  int64_t retry_after_ms() const { return retry_after_ms_; }
  Status WithRetryAfter(int64_t ms) && {
    retry_after_ms_ = ms;
    return std::move(*this);
  }

 private:
  StatusCode code_ = v1::OK;
  std::string message_;
  int64_t retry_after_ms_ = 0;
};

inline Status OkStatus() { return {}; }
inline Status Error(StatusCode code, std::string m) { return {code, std::move(m)}; }
inline Status InvalidArgument(std::string m) { return {v1::INVALID_ARGUMENT, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {v1::PERMISSION_DENIED, std::move(m)}; }
inline Status NotFound(std::string m) { return {v1::NOT_FOUND, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {v1::ALREADY_EXISTS, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {v1::FAILED_PRECONDITION, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {v1::RESOURCE_EXHAUSTED, std::move(m)}; }
inline Status Unavailable(std::string m) { return {v1::UNAVAILABLE, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {v1::DEADLINE_EXCEEDED, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {v1::UNAUTHENTICATED, std::move(m)}; }
inline Status Internal(std::string m) { return {v1::INTERNAL, std::move(m)}; }

// A value, or the failure that stopped it. Holding an OK Status without a value is a bug (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Status failure) : status_(std::move(failure)) { assert(!status_.ok()); }

  bool ok() const { return value_.has_value(); }
  // OK when there is a value.
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return *std::move(value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

// The one guard around a request's body (handlers use it through Guarded, common/status.h): an
// exception that slipped through becomes INTERNAL "internal error", logged with `what`, never leaked.
template <typename Body>
Status Guard(const char* what, Body&& body) {
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
