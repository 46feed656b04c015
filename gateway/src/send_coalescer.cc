#include "send_coalescer.h"

#include <algorithm>

namespace chat::gateway {

SendCoalescer::SendCoalescer(ShardedStubs<internal::ChatService>& stubs, uint32_t deadline_ms, uint32_t batch_max,
                             uint32_t inflight_per_shard, uint32_t max_wait_ms, Clock clock)
    : stubs_(stubs),
      deadline_ms_(deadline_ms),
      batch_max_(std::max<uint32_t>(1, batch_max)),
      inflight_per_shard_(std::max<uint32_t>(1, inflight_per_shard)),
      max_wait_(max_wait_ms),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {
  for (uint32_t i = 0; i < stubs_.size(); ++i) shards_.push_back(std::make_unique<Shard>());
}

void SendCoalescer::Refuse(DoneFn& done) {
  done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "chat shard overloaded; retry with the same client_msg_id"),
       {});
}

void SendCoalescer::Submit(uint32_t shard, internal::SendRequest req, DoneFn done) {
  Shard& s = *shards_.at(shard);
  const auto now = clock_();
  std::unique_lock lk(s.mu);
  if (!s.queue.empty() && now - s.queue.front().queued_at > max_wait_) {
    lk.unlock();
    return Refuse(done);
  }
  s.queue.push_back(Item{std::move(req), std::move(done),
                         std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms_), now});
  if (s.inflight < inflight_per_shard_) Issue(shard, lk);
}

void SendCoalescer::Issue(uint32_t shard, std::unique_lock<std::mutex>& lk) {
  Shard& s = *shards_[shard];
  struct Call {
    grpc::ClientContext ctx;
    internal::SendBatchRequest req;
    internal::SendBatchResult res;
    std::vector<DoneFn> done;
  };
  // Sends that waited too long are refused, not sent (they are at the front: the queue is FIFO).
  const auto now = clock_();
  size_t stale = 0;
  while (stale < s.queue.size() && now - s.queue[stale].queued_at > max_wait_) ++stale;
  std::vector<DoneFn> refused;
  refused.reserve(stale);
  for (size_t i = 0; i < stale; ++i) refused.push_back(std::move(s.queue[i].done));
  s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<std::ptrdiff_t>(stale));
  if (s.queue.empty()) {
    lk.unlock();
    for (auto& d : refused) Refuse(d);
    return;
  }
  auto call = std::make_shared<Call>();
  const size_t n = std::min<size_t>(s.queue.size(), batch_max_);
  auto deadline = std::chrono::system_clock::time_point::max();
  call->done.reserve(n);
  call->req.mutable_sends()->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) {
    Item& it = s.queue[i];
    *call->req.add_sends() = std::move(it.req);
    call->done.push_back(std::move(it.done));
    deadline = std::min(deadline, it.deadline);  // the oldest send's
  }
  s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<std::ptrdiff_t>(n));
  ++s.inflight;
  lk.unlock();
  for (auto& d : refused) Refuse(d);

  call->ctx.set_deadline(deadline);
  stubs_.at(shard).async()->SendBatch(&call->ctx, &call->req, &call->res, [this, shard, call](grpc::Status st) {
    // Free the slot (and send what waited for it) first: once the last `done` has run, the owner
    // may destroy this coalescer, so nothing below the callbacks touches `this`.
    {
      Shard& s = *shards_[shard];
      std::unique_lock lk(s.mu);
      --s.inflight;
      if (!s.queue.empty() && s.inflight < inflight_per_shard_) Issue(shard, lk);
    }
    const int got = call->res.results_size();
    for (size_t i = 0; i < call->done.size(); ++i) {
      if (!st.ok()) {
        call->done[i](st, {});
      } else if (static_cast<int>(i) >= got) {
        call->done[i](grpc::Status(grpc::StatusCode::INTERNAL, "short batch answer"), {});
      } else {
        internal::SendBatchItem* item = call->res.mutable_results(static_cast<int>(i));
        if (item->code() == 0) {
          call->done[i](grpc::Status::OK, std::move(*item->mutable_result()));
        } else {
          const int64_t wait = item->retry_after_ms();
          call->done[i](wait > 0 ? grpc::Status(static_cast<grpc::StatusCode>(item->code()), item->message(),
                                                std::to_string(wait))
                                 : grpc::Status(static_cast<grpc::StatusCode>(item->code()), item->message()),
                        {});
        }
      }
    }
  });
}

}  // namespace chat::gateway
