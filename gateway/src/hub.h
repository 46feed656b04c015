#pragma once
// SessionHub: the gateway's index of authenticated sessions by user, and the entry point for
// deliveries arriving from Redis. Add/Remove/All/size are thread-safe (one mutex; held only for map
// edits and lookups, never while touching a session). Deliver and Flush belong to one thread, the
// Redis subscriber's.
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chat/internal/services.pb.h"
#include "session_handle.h"

namespace chat::gateway {

class SessionHub {
 public:
  void Add(uint64_t user_id, std::shared_ptr<SessionHandle> session);
  void Remove(uint64_t user_id, uint64_t session_id);
  // Decodes one internal::Delivery and routes its event to the local sessions of its users, except
  // skip_session_id. The events are held until Flush (or until kMaxHeldEvents are held), so that a
  // session receiving several events from one read of the Redis connection gets them in one socket
  // write. Order per session is channel order. Returns the number of sessions the event was routed
  // to (-1 if the payload is malformed). A kick (kick_session_id set, from presence's session cap)
  // goes to that one session at once, which then closes with the KickedEvent's close code.
  int Deliver(std::string_view payload);
  // Decodes one Delivery from kRevocationChannel: calls on_revoke(user) (the account-check cache
  // forgets the user), then hands the revocation to every local session of the user, each of which
  // closes if it matches. Returns the sessions asked, -1 if malformed. Subscriber thread.
  int Revoke(std::string_view payload);
  void set_on_revoke(std::function<void(uint64_t)> f) { on_revoke_ = std::move(f); }
  // Hands every session the events routed to it since the last Flush.
  void Flush();
  std::vector<std::shared_ptr<SessionHandle>> All() const;
  size_t size() const;

 private:
  int Kick(internal::Delivery& d);
  static constexpr size_t kMaxHeldEvents = 4096;
  struct Held {
    std::shared_ptr<SessionHandle> session;
    std::vector<std::shared_ptr<const SharedEvent>> events;
  };
  std::function<void(uint64_t)> on_revoke_;  // set before the subscriber starts
  // Subscriber thread only.
  std::vector<Held> held_;
  std::unordered_map<const SessionHandle*, size_t> held_index_;
  size_t held_events_ = 0;

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::vector<std::shared_ptr<SessionHandle>>> by_user_;
  size_t count_ = 0;
};

}  // namespace chat::gateway
