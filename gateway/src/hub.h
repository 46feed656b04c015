#pragma once
// SessionHub: the gateway's index of authenticated sessions by user, and the entry point for
// deliveries arriving from Redis. Thread-safe (one mutex; held only for map edits and lookups,
// never while touching a session).
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "session_handle.h"

namespace chat::gateway {

class SessionHub {
 public:
  void Add(uint64_t user_id, std::shared_ptr<SessionHandle> session);
  void Remove(uint64_t user_id, uint64_t session_id);
  // Decodes one internal::Delivery and pushes its event to the local sessions of its users,
  // except skip_session_id. Called from the Redis subscriber thread, in channel order.
  // Returns the number of sessions the event was pushed to (-1 if the payload is malformed).
  int Deliver(std::string_view payload);
  std::vector<std::shared_ptr<SessionHandle>> All() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::vector<std::shared_ptr<SessionHandle>>> by_user_;
  size_t count_ = 0;
};

}  // namespace chat::gateway
