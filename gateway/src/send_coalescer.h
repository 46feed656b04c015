#pragma once
// SendCoalescer: the gateway's sends to one chat shard, grouped into SendBatch calls.
//
// At most `inflight_per_shard` batch calls per shard are outstanding. A send that arrives while
// that many are in flight waits in the shard's queue and leaves with the next batch (up to
// `batch_max` sends), which is issued as soon as a call completes. So a lightly loaded gateway sends
// each message alone at once (no added latency), and a loaded one pays one gRPC call, and one
// thread hand-off, per batch instead of per message.
//
// Shedding: a send waits at most `max_wait_ms` for a slot. One that waited longer is refused with
// RESOURCE_EXHAUSTED instead of being sent, and while the oldest waiting send is that old, new ones
// are refused at once: an overloaded shard answers quickly and the sends it accepts keep a bounded
// latency, instead of every send queueing until its deadline.
//
// Ordering: sends of one shard leave in Submit order; with several calls in flight they may commit
// in either order, as separate unary calls could (clients order by the server's seq).
// Threads: Submit may be called from any thread. `done` runs exactly once per send, on a gRPC
// callback thread (or inline when the call cannot start); it must not block.
// Lifetime: the owner may destroy the coalescer once every `done` it was given has returned
// (RequestRouter waits for its in-flight count to reach zero); no callback touches it after that.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/grpc_util.h"

namespace chat::gateway {

class SendCoalescer {
 public:
  using DoneFn = std::function<void(const grpc::Status&, v1::SendMessageResult&&)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `clock` (tests) defaults to steady_clock::now.
  SendCoalescer(ShardedStubs<internal::ChatService>& stubs, uint32_t deadline_ms, uint32_t batch_max,
                uint32_t inflight_per_shard, uint32_t max_wait_ms, Clock clock = {});

  // Sends `req` to chat shard `shard`; the call's deadline is deadline_ms after this Submit.
  void Submit(uint32_t shard, internal::SendRequest req, DoneFn done);

 private:
  struct Item {
    internal::SendRequest req;
    DoneFn done;
    std::chrono::system_clock::time_point deadline;
    std::chrono::steady_clock::time_point queued_at;
  };
  struct Shard {
    std::mutex mu;
    std::vector<Item> queue;  // waiting for a free call slot
    uint32_t inflight = 0;
  };
  // Takes up to batch_max queued items of `shard` (lock held by the caller, released here) and
  // issues one call with them; items that waited too long are refused instead.
  void Issue(uint32_t shard, std::unique_lock<std::mutex>& lk);
  static void Refuse(DoneFn& done);

  ShardedStubs<internal::ChatService>& stubs_;
  const uint32_t deadline_ms_;
  const uint32_t batch_max_;
  const uint32_t inflight_per_shard_;
  const std::chrono::milliseconds max_wait_;
  const Clock clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace chat::gateway
