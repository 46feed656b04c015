#include "common/friends.h"

#include <algorithm>

#include "common/shard.h"
#include "common/status.h"

namespace chat {

grpc::Status GrpcFriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others,
                                             std::unordered_set<uint64_t>* friends) {
  if (stubs_.size() == 0) return Unavailable("no account shards configured");
  auto& stub = stubs_.at(ShardOfUser(user_id, stubs_.size()));
  for (size_t off = 0; off < others.size(); off += kMaxIdsPerRequest) {
    internal::CheckFriendsRequest req;
    req.set_user_id(user_id);
    for (size_t i = off; i < std::min(others.size(), off + kMaxIdsPerRequest); ++i) req.add_other_ids(others[i]);
    internal::CheckFriendsResult res;
    auto ctx = MakeContext(deadline_ms_);
    if (auto st = stub.CheckFriends(ctx.get(), req, &res); !st.ok()) return PeerFailure("account CheckFriends", st);
    friends->insert(res.friend_ids().begin(), res.friend_ids().end());
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

}  // namespace chat
