#include "chat_service/friend_checker.h"

#include <spdlog/spdlog.h>

#include "common/shard.h"
#include "common/status.h"

namespace chat::chatsvc {

GrpcFriendChecker::GrpcFriendChecker(const std::vector<ShardConfig>& account_shards, uint32_t deadline_ms)
    : stubs_(account_shards), deadline_ms_(deadline_ms) {}

grpc::Status GrpcFriendChecker::AreFriends(uint64_t user_id, uint64_t other_id, bool* friends) {
  *friends = false;
  if (stubs_.size() == 0) return Unavailable("account service unavailable");
  internal::CheckFriendsRequest req;
  req.set_user_id(user_id);
  req.add_other_ids(other_id);
  internal::CheckFriendsResult res;
  auto ctx = MakeContext(deadline_ms_);
  grpc::Status st = stubs_.at(ShardOfUser(user_id, stubs_.size())).CheckFriends(ctx.get(), req, &res);
  if (!st.ok()) {
    spdlog::warn("CheckFriends failed: {} {}", static_cast<int>(st.error_code()), st.error_message());
    return Unavailable("account service unavailable, retry");
  }
  for (uint64_t f : res.friend_ids()) *friends |= (f == other_id);
  return grpc::Status::OK;
}

grpc::Status CachingFriendChecker::AreFriends(uint64_t user_id, uint64_t other_id, bool* friends) {
  const auto key = std::minmax(user_id, other_id);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(mu_);
    auto it = positive_.find(key);
    if (it != positive_.end()) {
      if (it->second > now) {
        *friends = true;
        return grpc::Status::OK;
      }
      positive_.erase(it);
    }
  }
  grpc::Status st = inner_.AreFriends(user_id, other_id, friends);
  if (st.ok() && *friends) {
    std::lock_guard lk(mu_);
    if (positive_.size() >= max_entries_) positive_.clear();
    positive_[key] = now + ttl_;
  }
  return st;
}

}  // namespace chat::chatsvc
