#pragma once
// What the rest of the gateway sees of a WebSocket session (the session type stays in session.cc).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chat/internal/services.pb.h"
#include "common/codec.h"

namespace chat::gateway {

// One event shared by every local recipient of a delivery: serialized once per encoding, lazily,
// and never copied per recipient. Thread-safe.
class SharedEvent : public std::enable_shared_from_this<SharedEvent> {
 public:
  explicit SharedEvent(std::string event_bytes) : event_bytes_(std::move(event_bytes)) {}
  // The complete ServerFrame for `enc`, aliasing this object's storage.
  std::shared_ptr<const std::string> Frame(WireEncoding enc) const;

 private:
  std::string event_bytes_;
  mutable std::once_flag proto_once_, json_once_;
  mutable std::string proto_frame_, json_frame_;
};

// Implemented by the WebSocket session. Every method is thread-safe: it posts to the session's
// strand, so no foreign thread ever touches the socket.
class SessionHandle {
 public:
  virtual ~SessionHandle() = default;
  // Queues `events` in order, to go out together (one socket write for as many as fit).
  virtual void PushEvents(std::vector<std::shared_ptr<const SharedEvent>> events) = 0;
  // Closes the session with `close_code` (graceful close handshake, bounded by a deadline).
  virtual void Kick(uint16_t close_code, std::string reason) = 0;
  // A revocation of this session's user (Delivery.revocation): when it covers this connection's token,
  // `kicked` (a KickedEvent) goes out and then the session closes with `close_code`.
  virtual void Revoke(std::shared_ptr<const internal::Revocation> revocation, std::shared_ptr<const SharedEvent> kicked,
                      uint16_t close_code, std::string reason) = 0;
  virtual uint64_t session_id() const = 0;
  // SteadyMs() (rate_limiter.h) of the last request this session decoded; 0 before the first.
  virtual int64_t last_request_ms() const = 0;
  // Presence registration of this (authenticated) session. Immutable once in the hub.
  virtual const internal::SessionRef& presence_ref() const = 0;
};

}  // namespace chat::gateway
