#include "chat_service/fanout_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "common/shard.h"

namespace chat::chat_service {

namespace {
constexpr size_t kMaxJobsPerRound = 1024;
}

FanoutQueue::FanoutQueue(PgChatStore& store, EventSink& sink, std::chrono::milliseconds member_ttl,
                         size_t max_cached_groups, size_t max_queued)
    : store_(store),
      sink_(sink),
      member_ttl_(member_ttl),
      max_cached_groups_(max_cached_groups),
      max_queued_(std::max<size_t>(1, max_queued)) {}

FanoutQueue::~FanoutQueue() { Stop(); }

void FanoutQueue::Start() {
  std::lock_guard lk(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void FanoutQueue::Stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FanoutQueue::PushMessages(std::vector<CommittedMessage>&& messages) {
  {
    std::lock_guard lk(mu_);
    if (exited_ || (stopping_ && !started_)) return;
    for (auto& m : messages) {
      Job j;
      j.is_message = true;
      j.message = std::move(m);
      EnqueueLocked(std::move(j));
    }
  }
  cv_.notify_one();
}

void FanoutQueue::PushItem(FanoutItem item) {
  {
    std::lock_guard lk(mu_);
    if (exited_ || (stopping_ && !started_)) return;
    Job j;
    j.item = std::move(item);
    EnqueueLocked(std::move(j));
  }
  cv_.notify_one();
}

void FanoutQueue::EnqueueLocked(Job&& job) {
  if (queue_.size() >= max_queued_) {
    // Full: presence or Redis is slower than the commits. Events are only doorbells (clients sync),
    // so the oldest one goes rather than memory growing without bound.
    queue_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    ++dropped_since_warning_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_drop_warning_ >= std::chrono::seconds(10)) {
      spdlog::warn(
          "fan-out queue full ({} events): dropped the oldest {} since the last warning; clients will "
          "catch up by sync",
          max_queued_, dropped_since_warning_);
      last_drop_warning_ = now;
      dropped_since_warning_ = 0;
    }
  }
  queue_.push_back(std::move(job));
}

void FanoutQueue::Run() {
  for (;;) {
    std::vector<Job> jobs;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {  // stopping and drained
        exited_ = true;
        return;
      }
      while (!queue_.empty() && jobs.size() < kMaxJobsPerRound) {
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    try {
      DeliverRound(jobs);
    } catch (const std::exception& e) {
      spdlog::warn("fan-out round of {} events failed: {}; clients will catch up by sync", jobs.size(), e.what());
    }
  }
}

void FanoutQueue::DeliverRound(std::vector<Job>& jobs) {
  const auto now = std::chrono::steady_clock::now();
  // Which group member lists are missing, expired or older than a message needs.
  std::vector<std::string> load;
  std::unordered_set<std::string> want;
  for (const Job& j : jobs) {
    if (!j.is_message || j.message.direct) continue;
    const std::string& id = j.message.message.conversation_id();
    auto it = members_.find(id);
    const bool fresh = it != members_.end() && now - it->second.loaded < member_ttl_ &&
                       it->second.members.members_version >= j.message.members_version;
    if (!fresh && want.insert(id).second) load.push_back(id);
  }
  if (!load.empty()) {
    std::vector<std::pair<std::string, GroupMembers>> loaded;
    grpc::Status st = store_.LoadGroupMembers(load, &loaded);
    if (!st.ok()) {
      // Cached entries stay in place, but the loop below uses one only if it is at least as new as the
      // message's members_version (an expired but new-enough entry is still exact for that message).
      spdlog::warn("fan-out: cannot load members of {} groups: {}", load.size(), st.error_message());
    } else {
      if (members_.size() + loaded.size() > max_cached_groups_) members_.clear();
      for (auto& [id, gm] : loaded) members_[id] = CacheEntry{std::move(gm), now};
    }
  }

  std::vector<FanoutItem> items;
  items.reserve(jobs.size());
  uint64_t skipped_in_round = 0;
  for (Job& j : jobs) {
    if (!j.is_message) {
      items.push_back(std::move(j.item));
      continue;
    }
    FanoutItem item;
    const v1::Message& m = j.message.message;
    if (j.message.direct) {
      auto p = ParseConversationId(m.conversation_id());
      if (!p) continue;
      item.user_ids = {p->a, p->b};
    } else {
      auto it = members_.find(m.conversation_id());
      if (it == members_.end() || it->second.members.members_version < j.message.members_version) {
        // Missing, or older than the membership the message was written under (the reload failed):
        // a removed member could still be in it, so push nothing; the recipients catch up by sync.
        ++skipped_in_round;
        continue;
      }
      for (const MemberWindow& mw : it->second.members.members)
        if (mw.joined_seq < m.seq() && m.seq() <= mw.left_seq) item.user_ids.push_back(mw.user_id);
    }
    if (item.user_ids.empty()) continue;
    item.skip_session_id = j.message.skip_session_id;
    item.conversation_id = m.conversation_id();
    *item.event.mutable_message()->mutable_message() = std::move(j.message.message);
    items.push_back(std::move(item));
  }
  if (skipped_in_round > 0) {
    skipped_no_members_.fetch_add(skipped_in_round, std::memory_order_relaxed);
    spdlog::warn(
        "fan-out: {} group messages not pushed (member list unavailable or stale); clients will catch "
        "up by sync",
        skipped_in_round);
  }
  if (!items.empty()) sink_.Deliver(items);
}

}  // namespace chat::chat_service
