#include "chat_service/fanout_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "common/shard.h"

namespace chat::chat_service {

namespace {
constexpr size_t kMaxJobsPerRound = 1024;
}

FanoutQueue::FanoutQueue(PgChatStore& store, EventDelivery& delivery, std::chrono::milliseconds member_ttl,
                         size_t max_cached_groups, size_t max_queued, size_t workers, OutboxAcks* acks)
    : store_(store),
      delivery_(delivery),
      acks_(acks),
      member_ttl_(member_ttl),
      max_cached_groups_(max_cached_groups),
      members_(std::max<size_t>(1, workers)),
      pool_("chat fan-out", std::max<size_t>(1, workers), max_queued, kMaxJobsPerRound,
            [this](size_t worker, std::vector<Job>& jobs) { DeliverRound(members_[worker], jobs); }) {}

FanoutQueue::~FanoutQueue() { Stop(); }

void FanoutQueue::Start() { pool_.Start(); }

void FanoutQueue::Stop() { pool_.Stop(); }

void FanoutQueue::PushMessages(std::vector<CommittedMessage>&& messages) {
  std::vector<Job> jobs(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    jobs[i].is_message = true;
    jobs[i].message = std::move(messages[i]);
  }
  pool_.PushAll(std::move(jobs), [](const Job& j) -> std::string_view { return j.message.message.conversation_id(); });
}

void FanoutQueue::PushItem(FanoutItem item) {
  std::string scratch;
  const size_t worker = pool_.WorkerOf(OrderingKey(item, scratch));
  Job j;
  j.item = std::move(item);
  pool_.PushTo(worker, std::move(j));
}

void FanoutQueue::Publish(std::vector<FanoutItem> items) {
  std::vector<Job> jobs(items.size());
  for (size_t i = 0; i < items.size(); ++i) jobs[i].item = std::move(items[i]);
  std::string scratch;
  pool_.PushAll(std::move(jobs), [&scratch](const Job& j) { return OrderingKey(j.item, scratch); });
}

void FanoutQueue::DeliverRound(MemberCache& cache, std::vector<Job>& jobs) {
  const auto now = std::chrono::steady_clock::now();
  // Which group member lists are missing, expired or older than a message needs.
  std::vector<std::string> load;
  std::unordered_set<std::string> want;
  for (const Job& j : jobs) {
    if (!j.is_message || j.message.direct) continue;
    const std::string& id = j.message.message.conversation_id();
    auto it = cache.find(id);
    const bool fresh = it != cache.end() && now - it->second.loaded < member_ttl_ &&
                       it->second.members.members_version >= j.message.members_version;
    if (!fresh && want.insert(id).second) load.push_back(id);
  }
  if (!load.empty()) {
    std::vector<std::pair<std::string, GroupMembers>> loaded;
    Status st = store_.LoadGroupMembers(load, &loaded);
    if (!st.ok()) {
      // Cached entries stay in place, but the loop below uses one only if it is at least as new as the
      // message's members_version (an expired but new-enough entry is still exact for that message).
      spdlog::warn("fan-out: cannot load members of {} groups: {}", load.size(), st.message());
    } else {
      if (cache.size() + loaded.size() > max_cached_groups_) cache.clear();
      for (auto& [id, gm] : loaded) cache[id] = CacheEntry{std::move(gm), now};
    }
  }

  std::vector<FanoutItem> items;
  items.reserve(jobs.size());
  uint64_t skipped_in_round = 0;
  std::vector<uint64_t> nobody;  // outbox rows whose message reaches nobody: done, never relayed again
  for (Job& j : jobs) {
    if (!j.is_message) {
      items.push_back(std::move(j.item));
      continue;
    }
    FanoutItem item;
    const v1::Message& m = j.message.message;
    if (j.message.direct) {
      auto p = ParseConversationId(m.conversation_id());
      if (!p) {
        if (j.message.outbox_id) nobody.push_back(j.message.outbox_id);
        continue;
      }
      item.user_ids = {p->a, p->b};
    } else {
      auto it = cache.find(m.conversation_id());
      if (it == cache.end() || it->second.members.members_version < j.message.members_version) {
        // Missing, or older than the membership the message was written under (the reload failed):
        // a removed member could still be in it, so push nothing; the recipients catch up by sync.
        ++skipped_in_round;
        continue;
      }
      for (const MemberWindow& mw : it->second.members.members)
        if (mw.joined_seq < m.seq() && m.seq() <= mw.left_seq) item.user_ids.push_back(mw.user_id);
    }
    if (item.user_ids.empty()) {
      if (j.message.outbox_id) nobody.push_back(j.message.outbox_id);
      continue;
    }
    item.skip_session_id = j.message.skip_session_id;
    item.conversation_id = m.conversation_id();
    item.outbox_id = j.message.outbox_id;
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
  if (acks_ && !nobody.empty()) acks_->Ack(nobody);
  if (items.empty()) return;
  if (!delivery_.DeliverNow(items) || !acks_) return;
  if (auto ids = OutboxIds(items); !ids.empty()) acks_->Ack(ids);
}

}  // namespace chat::chat_service
