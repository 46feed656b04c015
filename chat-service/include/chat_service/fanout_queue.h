#pragma once
// FanoutQueue: chat-service's EventPublisher (common/events.h). Message events are resolved here
// (who may read the message) and delivered by an OrderedPool of `workers` threads keyed by
// conversation id, so each conversation's events keep their order while different conversations fan
// out in parallel.
//
// Writers enqueue after their commit, under the store's commit-order mutex, so each worker's queue is
// in commit order (per conversation: seq order). A worker takes what it has queued, resolves the
// recipients of each message and hands the round to the EventDelivery in one call. It never blocks a
// reply; failures are logged only (clients repair by sync). Items that came from the outbox
// (FanoutItem::outbox_id, CommittedMessage::outbox_id) are acknowledged to `acks` once delivered, or
// at once when they reach nobody (a skipped message, whose member list could not be loaded, is not).
//
// Group membership cache contract: each worker caches the member windows of the groups it serves
// (one conversation always maps to one worker, so entries need no lock). Entries are tagged with
// conversations.members_version, and every committed message carries the version it was written
// under (returned by the send statement at no extra cost), so a stale entry is detected and reloaded
// before fan-out, whichever replica changed the membership. A message is never pushed from an entry
// older than its members_version: if the reload fails (database down, no free connection) the message
// is skipped and counted instead, since a stale list could still hold a member removed since.
// Recipients are filtered by each member's (joined_seq, left_seq] window, so a member added later
// never gets older messages and a removed member gets nothing after removal. Entries also expire after
// `ttl` to bound memory held for idle groups.
//
// Each worker holds at most `max_queued` events: when fan-out falls behind (presence or Redis slow or
// down) the oldest queued event is dropped and counted. Events are doorbells, so a dropped one costs a
// push, never a message: clients catch up by sync.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chat_service/chat_store.h"
#include "common/events.h"

namespace chat::chat_service {

class FanoutQueue : public EventPublisher {
 public:
  FanoutQueue(PgChatStore& store, EventDelivery& delivery,
              std::chrono::milliseconds member_ttl = std::chrono::seconds(60), size_t max_cached_groups = 10000,
              size_t max_queued = 100000, size_t workers = 2, OutboxAcks* acks = nullptr);
  ~FanoutQueue() override;  // Stop()

  void Start();
  // Drains what is queued, then joins. Pushes after Stop are dropped.
  void Stop();

  // Thread-safe. Message events to every member allowed to read the message (the sender included,
  // its sending session skipped).
  void PushMessages(std::vector<CommittedMessage>&& messages);
  // Thread-safe. A ready-made item (e.g. a read-position event for the user's other sessions).
  void PushItem(FanoutItem item);
  void Publish(std::vector<FanoutItem> items) override;

  // Group messages not pushed because no member list at least as new as the message could be loaded.
  uint64_t skipped_no_members() const { return skipped_no_members_.load(std::memory_order_relaxed); }
  // Events dropped because a worker's queue was full (the oldest go first).
  uint64_t dropped() const { return pool_.dropped(); }

 private:
  struct Job {
    bool is_message = false;
    CommittedMessage message;
    FanoutItem item;
  };
  struct CacheEntry {
    GroupMembers members;
    std::chrono::steady_clock::time_point loaded;
  };
  using MemberCache = std::unordered_map<std::string, CacheEntry>;
  void DeliverRound(MemberCache& cache, std::vector<Job>& jobs);

  PgChatStore& store_;
  EventDelivery& delivery_;
  OutboxAcks* const acks_;
  const std::chrono::milliseconds member_ttl_;
  const size_t max_cached_groups_;  // per worker
  std::atomic<uint64_t> skipped_no_members_{0};
  std::vector<MemberCache> members_;  // one per worker, used by that worker only
  OrderedPool<Job> pool_;             // last: its workers use the members above
};

}  // namespace chat::chat_service
