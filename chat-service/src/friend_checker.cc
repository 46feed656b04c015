#include "chat_service/friend_checker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/shard.h"
#include "common/status.h"

namespace chat::chat_service {

grpc::Status FriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others,
                                         std::unordered_set<uint64_t>* friends) {
  for (uint64_t o : others) {
    bool f = false;
    if (auto st = AreFriends(user_id, o, &f); !st.ok()) return st;
    if (f) friends->insert(o);
  }
  return grpc::Status::OK;
}

GrpcFriendChecker::GrpcFriendChecker(const std::vector<ShardConfig>& account_shards, uint32_t deadline_ms)
    : stubs_(account_shards), deadline_ms_(deadline_ms) {}

grpc::Status GrpcFriendChecker::AreFriends(uint64_t user_id, uint64_t other_id, bool* friends) {
  std::unordered_set<uint64_t> found;
  grpc::Status st = FriendsAmong(user_id, {other_id}, &found);
  *friends = st.ok() && found.count(other_id) > 0;
  return st;
}

grpc::Status GrpcFriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others,
                                             std::unordered_set<uint64_t>* friends) {
  if (stubs_.size() == 0) return Unavailable("account service unavailable");
  constexpr size_t kChunk = 1000;  // account-service's kMaxIdsPerRequest
  for (size_t off = 0; off < others.size(); off += kChunk) {
    internal::CheckFriendsRequest req;
    req.set_user_id(user_id);
    for (size_t i = off; i < std::min(others.size(), off + kChunk); ++i) req.add_other_ids(others[i]);
    internal::CheckFriendsResult res;
    auto ctx = MakeContext(deadline_ms_);
    grpc::Status st = stubs_.at(ShardOfUser(user_id, stubs_.size())).CheckFriends(ctx.get(), req, &res);
    if (!st.ok()) {
      spdlog::warn("CheckFriends failed: {} {}", static_cast<int>(st.error_code()), st.error_message());
      return Unavailable("account service unavailable, retry");
    }
    for (uint64_t f : res.friend_ids()) friends->insert(f);
  }
  return grpc::Status::OK;
}

bool CachingFriendChecker::KnownFriends(uint64_t user_id, uint64_t other_id) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  auto it = positive_.find(std::minmax(user_id, other_id));
  if (it == positive_.end()) return false;
  if (it->second > now) return true;
  positive_.erase(it);
  return false;
}

void CachingFriendChecker::Remember(uint64_t a, uint64_t b, std::chrono::steady_clock::time_point now) {
  std::lock_guard lk(mu_);
  if (positive_.size() >= max_entries_) positive_.clear();
  positive_[std::minmax(a, b)] = now + ttl_;
}

grpc::Status CachingFriendChecker::AreFriends(uint64_t user_id, uint64_t other_id, bool* friends) {
  std::unordered_set<uint64_t> found;
  grpc::Status st = FriendsAmong(user_id, {other_id}, &found);
  *friends = st.ok() && found.count(other_id) > 0;
  return st;
}

grpc::Status CachingFriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others,
                                                std::unordered_set<uint64_t>* friends) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<uint64_t> ask;
  for (uint64_t o : others) {
    if (KnownFriends(user_id, o))
      friends->insert(o);
    else
      ask.push_back(o);
  }
  if (ask.empty()) return grpc::Status::OK;
  std::unordered_set<uint64_t> found;
  if (auto st = inner_.FriendsAmong(user_id, ask, &found); !st.ok()) return st;
  for (uint64_t o : found) {
    Remember(user_id, o, now);
    friends->insert(o);
  }
  return grpc::Status::OK;
}

}  // namespace chat::chat_service
