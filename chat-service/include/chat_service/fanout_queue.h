#pragma once
// FanoutQueue: the one ordered fan-out thread of a chat-service process.
//
// Writers enqueue after their commit, under the store's commit-order mutex, so the queue is in
// commit order (per conversation: seq order). The thread drains everything queued, resolves the
// recipients of each message and hands the whole round to the EventSink in one Deliver call. It never
// blocks a reply; failures are logged only (clients repair by sync).
//
// Group membership cache contract: entries are tagged with conversations.members_version, and every
// committed message carries the version it was written under (returned by the send statement at no
// extra cost), so a stale entry is detected and reloaded before fan-out, whichever replica changed the
// membership. A message is never pushed from an entry older than its members_version: if the reload
// fails (database down, no free connection) the message is skipped and counted instead, since a stale
// list could still hold a member removed since. Recipients are filtered by each member's (joined_seq, left_seq] window,
// so a member added later never gets older messages and a removed member gets nothing after removal. Entries also
// expire after `ttl` to bound memory held for idle groups.
//
// The queue holds at most `max_queued` events: when fan-out falls behind (presence or Redis slow or
// down) the oldest queued event is dropped and counted, with a warning at most every 10 s. Events are
// doorbells, so a dropped one costs a push, never a message: clients catch up by sync.
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
#include "chat_service/event_sink.h"

namespace chat::chat_service {

class FanoutQueue {
 public:
  FanoutQueue(PgChatStore& store, EventSink& sink, std::chrono::milliseconds member_ttl = std::chrono::seconds(60),
              size_t max_cached_groups = 10000, size_t max_queued = 100000);
  ~FanoutQueue();  // Stop()

  void Start();
  // Drains what is queued, then joins. Pushes after Stop are dropped.
  void Stop();

  // Thread-safe. Message events to every member allowed to read the message (the sender included,
  // its sending session skipped).
  void PushMessages(std::vector<CommittedMessage>&& messages);
  // Thread-safe. A ready-made item (e.g. a read-position event for the user's other sessions).
  void PushItem(FanoutItem item);

  // Group messages not pushed because no member list at least as new as the message could be loaded.
  uint64_t skipped_no_members() const { return skipped_no_members_.load(std::memory_order_relaxed); }
  // Events dropped because the queue was full (the oldest go first).
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

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
  void Run();
  void EnqueueLocked(Job&& job);  // mu_ held
  void DeliverRound(std::vector<Job>& jobs);

  PgChatStore& store_;
  EventSink& sink_;
  const std::chrono::milliseconds member_ttl_;
  const size_t max_cached_groups_;
  const size_t max_queued_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  bool started_ = false;
  bool exited_ = false;  // the thread drained the queue and returned
  std::thread thread_;
  std::atomic<uint64_t> skipped_no_members_{0};
  std::atomic<uint64_t> dropped_{0};
  uint64_t dropped_since_warning_ = 0;                       // mu_
  std::chrono::steady_clock::time_point last_drop_warning_;  // mu_

  // Fan-out thread only.
  std::unordered_map<std::string, CacheEntry> members_;
};

}  // namespace chat::chat_service
