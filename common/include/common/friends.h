#pragma once
// The one friend checker: "which of these users are friends of that one?" and "does this user take
// direct messages from that one?", answered by the account shard that owns the user (account-service
// CheckFriends). chat-service asks it to authorize direct messages, group-service before adding
// members.
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

// What a recipient's account says of a direct message from a sender.
enum class Inbound {
  kAccepted,   // friends both ways, and the recipient has not blocked the sender
  kNotFriend,  // either side does not list the other (never friends, or one deleted the other)
  kRejected,   // the recipient blocked the sender
};
using InboundDone = std::function<void(Result<Inbound>)>;
// The message of the PERMISSION_DENIED a blocked user's messages and friend requests get
// (protocol.md 8.30): the same words whatever else is true, so it reveals nothing but the block.
inline constexpr char kRejectedByReceiver[] = "rejected by the receiver";

// Seam (tests fake it).
class FriendChecker {
 public:
  virtual ~FriendChecker() = default;
  // Those of `others` who are friends of user_id both ways. A failure means the answer is unknown
  // (UNAVAILABLE or DEADLINE_EXCEEDED: retry). Blocks the calling thread for at most the RPC deadline.
  virtual Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) = 0;
  // Whether `recipient` takes direct messages from `sender`, without blocking: `done` runs exactly
  // once, on the calling thread when no one had to be asked, otherwise on a gRPC completion thread
  // (it must not block). The default asks FriendsAmong inline and knows no blocks (fakes).
  virtual void InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) {
    Result<FriendSet> f = FriendsAmong(recipient, {sender});
    if (!f.ok()) return done(f.status());
    done(f->count(sender) ? Inbound::kAccepted : Inbound::kNotFriend);
  }
  // Never blocks: true when `recipient` is known to accept `sender`'s messages without asking anyone
  // (a cache hit).
  virtual bool KnownAccepted(uint64_t /*recipient*/, uint64_t /*sender*/) { return false; }
  // The pair's contact changed (block, unblock, delete): forget anything remembered about it, both
  // directions. Returns after which no answer from before the call is used.
  virtual void Forget(uint64_t /*a*/, uint64_t /*b*/) {}
};

// CheckFriends on the account shard ShardOfUser(user_id) (the recipient's, for InboundAsync), split
// into requests of at most kMaxIdsPerRequest ids (account-service's own cap), each with a deadline.
class GrpcFriendChecker : public FriendChecker {
 public:
  static constexpr size_t kMaxIdsPerRequest = 1000;
  GrpcFriendChecker(const std::vector<ShardConfig>& account_shards, const InternalTlsConfig& tls, uint32_t deadline_ms)
      : stubs_(account_shards, tls), deadline_ms_(deadline_ms) {}
  Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) override;
  void InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) override;

 private:
  ShardedStubs<internal::AccountService> stubs_;
  uint32_t deadline_ms_;
};

// Remembers kAccepted answers of InboundAsync for `ttl`, per direction (recipient, sender): a block
// or a one-way delete makes the two directions differ. Other answers are never cached, so a new
// friend can write at once. account-service ends a changed pair's entries before it answers the
// change (chat-service ForgetContacts on every replica); a replica it could not reach keeps them for
// at most `ttl`. FriendsAmong is not cached. Bounded: the cache is cleared when it holds max_entries.
// Thread-safe.
class CachingFriendChecker : public FriendChecker {
 public:
  CachingFriendChecker(FriendChecker& inner, std::chrono::milliseconds ttl, size_t max_entries = 100000)
      : inner_(inner), ttl_(ttl), max_entries_(max_entries) {}
  Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) override {
    return inner_.FriendsAmong(user_id, others);
  }
  void InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) override;
  bool KnownAccepted(uint64_t recipient, uint64_t sender) override;
  void Forget(uint64_t a, uint64_t b) override;
  void Clear();

 private:
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const noexcept {
      return std::hash<uint64_t>()(p.first * 0x9e3779b97f4a7c15ULL ^ p.second);
    }
  };
  FriendChecker& inner_;
  std::chrono::milliseconds ttl_;
  size_t max_entries_;
  std::mutex mu_;
  // (recipient, sender) -> accepted until; generation_ counts Forget/Clear calls so that an answer
  // asked before one of them is not remembered after it.
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::chrono::steady_clock::time_point, PairHash> accepted_;
  uint64_t generation_ = 0;
};

}  // namespace chat
