#pragma once
// The one friend checker: "which of these users are friends of that one?", answered by the account
// shard that owns the user (account-service CheckFriends). chat-service asks it to authorize direct
// messages, group-service before adding members.
//
// Threads: every implementation is thread-safe.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/config.h"
#include "common/error.h"
#include "common/grpc_util.h"

namespace chat {

using FriendSet = std::unordered_set<uint64_t>;
using FriendsDone = std::function<void(Result<FriendSet>)>;

// Seam (tests fake it).
class FriendChecker {
 public:
  virtual ~FriendChecker() = default;
  // Those of `others` who are friends of user_id. A failure means the answer is unknown (UNAVAILABLE
  // or DEADLINE_EXCEEDED: retry). Blocks the calling thread for at most the RPC deadline.
  virtual Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) = 0;
  // The same without blocking: `done` runs exactly once, on the calling thread when no one had to be
  // asked, otherwise on a gRPC completion thread (it must not block). The default asks FriendsAmong
  // inline (fakes).
  virtual void FriendsAmongAsync(uint64_t user_id, std::vector<uint64_t> others, FriendsDone done) {
    done(FriendsAmong(user_id, others));
  }
  // Never blocks: true when the pair is known to be friends without asking anyone (a cache hit).
  virtual bool KnownFriends(uint64_t /*user_id*/, uint64_t /*other_id*/) { return false; }
};

// CheckFriends on the account shard ShardOfUser(user_id), split into requests of at most
// kMaxIdsPerRequest ids (account-service's own cap), each with a deadline.
class GrpcFriendChecker : public FriendChecker {
 public:
  static constexpr size_t kMaxIdsPerRequest = 1000;
  GrpcFriendChecker(const std::vector<ShardConfig>& account_shards, const InternalTlsConfig& tls, uint32_t deadline_ms)
      : stubs_(account_shards, tls), deadline_ms_(deadline_ms) {}
  Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) override;
  // One callback call per request of kMaxIdsPerRequest ids, all in flight at once.
  void FriendsAmongAsync(uint64_t user_id, std::vector<uint64_t> others, FriendsDone done) override;

 private:
  ShardedStubs<internal::AccountService> stubs_;
  uint32_t deadline_ms_;
};

// Remembers positive answers for `ttl` (friendship is symmetric, so (a,b) and (b,a) share an entry).
// Negative answers are never cached, so a new friend can write at once; an unfriended user may still
// pass for up to `ttl`. Bounded: the cache is cleared when it holds max_entries.
class CachingFriendChecker : public FriendChecker {
 public:
  CachingFriendChecker(FriendChecker& inner, std::chrono::milliseconds ttl, size_t max_entries = 100000)
      : inner_(inner), ttl_(ttl), max_entries_(max_entries) {}
  Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) override;
  void FriendsAmongAsync(uint64_t user_id, std::vector<uint64_t> others, FriendsDone done) override;
  bool KnownFriends(uint64_t user_id, uint64_t other_id) override;

 private:
  void Remember(uint64_t a, uint64_t b, std::chrono::steady_clock::time_point now);
  // Moves the cache hits of `others` into *known and returns the rest.
  std::vector<uint64_t> SplitKnown(uint64_t user_id, const std::vector<uint64_t>& others, FriendSet* known);
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const noexcept {
      return std::hash<uint64_t>()(p.first * 0x9e3779b97f4a7c15ULL ^ p.second);
    }
  };
  FriendChecker& inner_;
  std::chrono::milliseconds ttl_;
  size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::chrono::steady_clock::time_point, PairHash> positive_;
};

}  // namespace chat
