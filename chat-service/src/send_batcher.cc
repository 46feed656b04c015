#include "chat_service/send_batcher.h"

#include <spdlog/spdlog.h>

#include <optional>

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
  if (quotas_) charger_ = std::thread([this] { Charge(); });
  for (uint32_t i = 0; i < committers_; ++i) threads_.emplace_back([this] { Run(); });
}

void SendBatcher::Stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  charge_cv_.notify_all();
  if (charger_.joinable()) charger_.join();  // it moved everything uncharged to queue_
  {
    std::lock_guard lk(mu_);
    drained_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  // Nothing is left unless Start was never called.
  std::deque<Item> left;
  {
    std::lock_guard lk(mu_);
    left.swap(uncharged_);
    for (auto& it : queue_) left.push_back(std::move(it));
    queue_.clear();
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
    if (uncharged_.size() + queue_.size() >= queue_max_) {
      lk.unlock();
      return done(SendOutcome{ResourceExhausted("chat shard overloaded; retry"), {}});
    }
    (quotas_ ? uncharged_ : queue_).push_back(Item{std::move(send), deadline, std::move(done)});
  }
  (quotas_ ? charge_cv_ : cv_).notify_one();
}

std::future<SendOutcome> SendBatcher::Submit(PendingSend send, std::chrono::system_clock::time_point deadline) {
  auto p = std::make_shared<std::promise<SendOutcome>>();
  auto f = p->get_future();
  Submit(std::move(send), deadline, [p](SendOutcome&& o) { p->set_value(std::move(o)); });
  return f;
}

namespace {
// Answers the items of `batch` that `verdict` gives an outcome (they are not committed) and removes
// them; the rest keep their order.
template <class Item, class Verdict>
void AnswerAndRemove(std::vector<Item>* batch, Verdict verdict) {
  size_t kept = 0;
  for (size_t i = 0; i < batch->size(); ++i) {
    Item& it = (*batch)[i];
    if (std::optional<SendOutcome> answer = verdict(i, it)) {
      it.done(std::move(*answer));
      continue;
    }
    if (kept != i) (*batch)[kept] = std::move(it);
    ++kept;
  }
  batch->erase(batch->begin() + static_cast<std::ptrdiff_t>(kept), batch->end());
}

// Answers the sends of `batch` whose callers already gave up and removes them.
template <class Item>
void AnswerExpired(std::vector<Item>* batch) {
  const auto now = std::chrono::system_clock::now();
  AnswerAndRemove(batch, [now](size_t, const Item& it) -> std::optional<SendOutcome> {
    if (it.deadline > now) return std::nullopt;
    return SendOutcome{Error(v1::DEADLINE_EXCEEDED, "send timed out; retry with the same client_msg_id"), {}};
  });
}
}  // namespace

void SendBatcher::Charge() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock lk(mu_);
      charge_cv_.wait(lk, [&] { return stopping_ || !uncharged_.empty(); });
      if (uncharged_.empty()) return;  // stopping and drained
      batch.reserve(uncharged_.size());
      for (auto& it : uncharged_) batch.push_back(std::move(it));
      uncharged_.clear();
    }
    AnswerExpired(&batch);
    RefuseOverQuota(&batch);
    if (batch.empty()) continue;
    {
      std::lock_guard lk(mu_);
      for (auto& it : batch) queue_.push_back(std::move(it));
    }
    cv_.notify_all();
  }
}

void SendBatcher::Run() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return (stopping_ && (drained_ || !quotas_)) || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < batch_max_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    AnswerExpired(&batch);
    if (batch.empty()) continue;
    std::vector<const PendingSend*> sends;
    sends.reserve(batch.size());
    for (const Item& it : batch) sends.push_back(&it.send);
    std::vector<SendOutcome> outcomes;
    try {
      outcomes =
          store_.CommitSends(sends, [this](std::vector<CommittedMessage>&& m) { fanout_.PushMessages(std::move(m)); });
    } catch (const std::exception& e) {
      spdlog::error("send batch of {} failed: {}", batch.size(), e.what());
      outcomes.assign(batch.size(), SendOutcome{Internal("message could not be stored"), {}});
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
  }
}

void SendBatcher::RefuseOverQuota(std::vector<Item>* batch) {
  if (batch->empty()) return;
  std::vector<std::vector<QuotaCharge>> requests;
  requests.reserve(batch->size());
  for (const Item& it : *batch) {
    const uint64_t user = it.send.sender_id;
    if (user == 0) {  // system notices are the server's own
      requests.emplace_back();
      continue;
    }
    requests.push_back({{kPerSecond, user, 1},
                        {kPerMinute, user, 1},
                        {kBytesPerMinute, user, static_cast<uint64_t>(it.send.content.ByteSizeLong())}});
  }
  const std::vector<int64_t> waits = quotas_->Take(requests);
  AnswerAndRemove(batch, [&waits](size_t i, const Item&) -> std::optional<SendOutcome> {
    if (waits[i] == 0) return std::nullopt;
    return SendOutcome{QuotaExceeded("too many messages from this user (limits.chat.user_messages_per_second, "
                                     "user_messages_per_minute, user_history_bytes_per_minute)",
                                     waits[i]),
                       {}};
  });
}

}  // namespace chat::chat_service
