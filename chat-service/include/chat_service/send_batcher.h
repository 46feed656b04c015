#pragma once
// SendBatcher: group commit for sends. Handlers Submit() authorized sends with a completion callback
// (nothing waits on a thread); one committer thread takes everything queued (up to batch_max),
// commits it as one transaction through PgChatStore::CommitSends, then runs each callback on the
// committer thread. A committer never calls another service. The committed messages go to the FanoutQueue from inside
// the commit-order section, so fan-out never delays a reply.
//
// `committers` threads take batches concurrently: their statements (one round trip per send) run
// in parallel, while PgChatStore::CommitSends serializes the commit and the hand-off to fan-out in
// its commit-order section, so fan-out order is still commit order. Every batch locks conversation
// rows in id order, so concurrent batches cannot deadlock; a batch amortizes the commit (WAL flush)
// over every send queued while other batches were busy.
//
// Per-user quotas (UserQuotas, when given): a charge stage in front of the committers. One charger
// thread takes everything submitted since its last pass, charges the senders' message and byte quotas
// (SendQuotaSpecs) in one Redis round trip, answers the sends over quota RESOURCE_EXHAUSTED with the
// wait (they are not committed), and queues the rest for the committers in submission order. So the
// Redis round trip of one batch overlaps the commit of the one before instead of adding to it.
// Charged per attempt: a retry of a send that already committed is charged again (its reply,
// duplicate or refusal, tells the client what holds).
//
// Backpressure: at most `queue_max` sends wait (charge stage and commit queue together); beyond that Submit fails at
// once with RESOURCE_EXHAUSTED ("chat shard overloaded; retry"), so overload costs a cheap refusal instead of an ever
// longer queue. Each send carries its caller's deadline; a send whose deadline has passed when its batch is taken is
// answered DEADLINE_EXCEEDED and not committed (its caller already gave up, so the commit would be wasted work that
// delays the live sends behind it).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "chat_service/chat_store.h"
#include "chat_service/fanout_queue.h"
#include "common/user_quota.h"

namespace chat::chat_service {

// The quotas a user's sends draw on, in this order: messages per second, messages per minute, history
// bytes (stored content) per minute (limits.chat.user_*).
std::vector<QuotaSpec> SendQuotaSpecs(const Limits& limits);

class SendBatcher {
 public:
  using DoneFn = std::function<void(SendOutcome&&)>;
  // `quotas` (borrowed, may be null: no per-user limits) must have been made from SendQuotaSpecs.
  SendBatcher(PgChatStore& store, FanoutQueue& fanout, uint32_t batch_max, uint32_t queue_max = 10000,
              uint32_t committers = 1, UserQuotas* quotas = nullptr);
  ~SendBatcher();  // Stop()

  void Start();
  // Stops accepting (later Submits fail with UNAVAILABLE), charges and commits everything queued, joins.
  void Stop();

  // Thread-safe. `done` runs exactly once: on the committer thread once the send's batch committed
  // (or failed, or the send was refused), when its batch is taken after `deadline` (then nothing is
  // committed), or on the caller's thread before Submit returns when the queue is full or stopping.
  // `done` must not block: it holds up the batches behind it.
  void Submit(PendingSend send, std::chrono::system_clock::time_point deadline, DoneFn done);
  // The same, as a future (tests, tools).
  std::future<SendOutcome> Submit(
      PendingSend send, std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max());

 private:
  struct Item {
    PendingSend send;
    std::chrono::system_clock::time_point deadline;
    DoneFn done;
  };
  void Run();     // a committer
  void Charge();  // the charge stage (only with quotas)

  // Answers the sends of `batch` that are over quota or past their deadline and removes them from it.
  void RefuseOverQuota(std::vector<Item>* batch);

  PgChatStore& store_;
  FanoutQueue& fanout_;
  UserQuotas* const quotas_;
  const uint32_t batch_max_;
  const size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;         // committers: queue_ or drained_
  std::condition_variable charge_cv_;  // the charger: uncharged_ or stopping_
  std::deque<Item> uncharged_;         // submitted, not yet charged (only with quotas)
  std::deque<Item> queue_;             // ready to commit
  bool stopping_ = false;              // no more Submits
  bool drained_ = false;               // and nothing more will reach queue_
  const uint32_t committers_;
  std::thread charger_;
  std::vector<std::thread> threads_;
};

}  // namespace chat::chat_service
