#include "chat_service/send_batcher.h"

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace chat::chatsvc {

SendBatcher::SendBatcher(PgChatStore& store, FanoutQueue& fanout, uint32_t batch_max)
    : store_(store), fanout_(fanout), batch_max_(std::max<uint32_t>(1, batch_max)) {}

SendBatcher::~SendBatcher() { Stop(); }

void SendBatcher::Start() {
  std::lock_guard lk(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void SendBatcher::Stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Nothing is left unless Start was never called.
  std::lock_guard lk(mu_);
  for (auto& it : queue_) it.done.set_value(SendOutcome{Unavailable("chat service is shutting down"), {}});
  queue_.clear();
}

std::future<SendOutcome> SendBatcher::Submit(PendingSend send) {
  std::promise<SendOutcome> p;
  auto f = p.get_future();
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      p.set_value(SendOutcome{Unavailable("chat service is shutting down"), {}});
      return f;
    }
    queue_.push_back(Item{std::move(send), std::move(p)});
  }
  cv_.notify_one();
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
    std::vector<const PendingSend*> sends;
    sends.reserve(batch.size());
    for (const auto& it : batch) sends.push_back(&it.send);
    std::vector<SendOutcome> outcomes;
    try {
      outcomes = store_.CommitSends(sends, [this](std::vector<CommittedMessage>&& m) {
        fanout_.PushMessages(std::move(m));
      });
    } catch (const std::exception& e) {
      spdlog::error("send batch of {} failed: {}", batch.size(), e.what());
      outcomes.assign(batch.size(), SendOutcome{Internal("message could not be stored"), {}});
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done.set_value(std::move(outcomes[i]));
  }
}

}  // namespace chat::chatsvc
