#pragma once
// SendBatcher: group commit for sends. Handler threads Submit() and wait on the returned future;
// one committer thread takes everything queued (up to batch_max) and commits it as one transaction
// through PgChatStore::CommitSends, then fulfils each future. The committed messages go to the
// FanoutQueue from inside the commit-order section, so fan-out never delays a reply.
//
// One committer thread on purpose: with it, batches of this process commit one after the other, so
// fan-out order is commit order without any reordering buffer; a batch amortizes the commit (WAL
// flush) over every send queued while the previous batch was committing.
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "chat_service/chat_store.h"
#include "chat_service/fanout_queue.h"

namespace chat::chatsvc {

class SendBatcher {
 public:
  SendBatcher(PgChatStore& store, FanoutQueue& fanout, uint32_t batch_max);
  ~SendBatcher();  // Stop()

  void Start();
  // Stops accepting (later Submits fail with UNAVAILABLE), commits everything queued, joins.
  void Stop();

  // Thread-safe. The future becomes ready once the send's batch committed (or failed).
  std::future<SendOutcome> Submit(PendingSend send);

 private:
  struct Item {
    PendingSend send;
    std::promise<SendOutcome> done;
  };
  void Run();

  PgChatStore& store_;
  FanoutQueue& fanout_;
  const uint32_t batch_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace chat::chatsvc
