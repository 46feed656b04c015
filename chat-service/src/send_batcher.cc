#include "chat_service/send_batcher.h"

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace chat::chat_service {

namespace {
enum SendQuota : size_t { kPerSecond = 0, kPerMinute = 1, kBytesPerMinute = 2 };
}  // namespace

std::vector<QuotaSpec> SendQuotaSpecs(const Limits& limits) {
  return {{"msg_s", limits.chat.user_messages_per_second, 1000},
          {"msg_m", limits.chat.user_messages_per_minute, 60 * 1000},
          {"bytes_m", limits.chat.user_history_bytes_per_minute, 60 * 1000}};
}

SendBatcher::SendBatcher(PgChatStore& store, FanoutQueue& fanout, uint32_t batch_max, uint32_t queue_max,
                         uint32_t committers, UserQuotas* quotas)
    : store_(store),
      fanout_(fanout),
      quotas_(quotas),
      batch_max_(std::max<uint32_t>(1, batch_max)),
      queue_max_(std::max<uint32_t>(1, queue_max)),
      committers_(std::max<uint32_t>(1, committers)) {}

SendBatcher::~SendBatcher() { Stop(); }

void SendBatcher::Start() {
  std::lock_guard lk(mu_);
  if (!threads_.empty() || stopping_) return;
  for (uint32_t i = 0; i < committers_; ++i) threads_.emplace_back([this] { Run(); });
}

void SendBatcher::Stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  // Nothing is left unless Start was never called.
  std::deque<Item> left;
  {
    std::lock_guard lk(mu_);
    left.swap(queue_);
  }
  for (auto& it : left) it.done(SendOutcome{Unavailable("chat service is shutting down"), {}});
}

void SendBatcher::Submit(PendingSend send, std::chrono::system_clock::time_point deadline, DoneFn done) {
  {
    std::unique_lock lk(mu_);
    if (stopping_) {
      lk.unlock();
      return done(SendOutcome{Unavailable("chat service is shutting down"), {}});
    }
    if (queue_.size() >= queue_max_) {
      lk.unlock();
      return done(SendOutcome{ResourceExhausted("chat shard overloaded; retry"), {}});
    }
    queue_.push_back(Item{std::move(send), deadline, std::move(done)});
  }
  cv_.notify_one();
}

std::future<SendOutcome> SendBatcher::Submit(PendingSend send, std::chrono::system_clock::time_point deadline) {
  auto p = std::make_shared<std::promise<SendOutcome>>();
  auto f = p->get_future();
  Submit(std::move(send), deadline, [p](SendOutcome&& o) { p->set_value(std::move(o)); });
  return f;
}

void SendBatcher::Run() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < batch_max_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Sends whose callers already gave up are answered, not committed.
    const auto now = std::chrono::system_clock::now();
    std::vector<Item*> live;
    live.reserve(batch.size());
    for (auto& it : batch) {
      if (it.deadline <= now)
        it.done(SendOutcome{Error(v1::DEADLINE_EXCEEDED, "send timed out; retry with the same client_msg_id"), {}});
      else
        live.push_back(&it);
    }
    if (quotas_) RefuseOverQuota(&live);
    if (live.empty()) continue;
    std::vector<const PendingSend*> sends;
    sends.reserve(live.size());
    for (const Item* it : live) sends.push_back(&it->send);
    std::vector<SendOutcome> outcomes;
    try {
      outcomes =
          store_.CommitSends(sends, [this](std::vector<CommittedMessage>&& m) { fanout_.PushMessages(std::move(m)); });
    } catch (const std::exception& e) {
      spdlog::error("send batch of {} failed: {}", live.size(), e.what());
      outcomes.assign(live.size(), SendOutcome{Internal("message could not be stored"), {}});
    }
    for (size_t i = 0; i < live.size(); ++i) live[i]->done(std::move(outcomes[i]));
  }
}

void SendBatcher::RefuseOverQuota(std::vector<Item*>* live) {
  std::vector<std::vector<QuotaCharge>> requests;
  requests.reserve(live->size());
  for (const Item* it : *live) {
    const uint64_t user = it->send.sender_id;
    if (user == 0) {  // system notices are the server's own
      requests.emplace_back();
      continue;
    }
    requests.push_back({{kPerSecond, user, 1},
                        {kPerMinute, user, 1},
                        {kBytesPerMinute, user, static_cast<uint64_t>(it->send.content.ByteSizeLong())}});
  }
  const std::vector<int64_t> waits = quotas_->Take(requests);
  size_t kept = 0;
  for (size_t i = 0; i < live->size(); ++i) {
    if (waits[i] == 0) {
      (*live)[kept++] = (*live)[i];
      continue;
    }
    (*live)[i]->done(
        SendOutcome{QuotaExceeded("too many messages from this user (limits.chat.user_messages_per_second, "
                                  "user_messages_per_minute, user_history_bytes_per_minute)",
                                  waits[i]),
                    {}});
  }
  live->resize(kept);
}

}  // namespace chat::chat_service
