#pragma once
// The gateway's authentication step, whether the token arrives in the HTTP upgrade (Authorization
// header or access_token) or in an authenticate request. Two checks, in order:
//   1. Verify: the token itself (key id, HMAC, expiry), locally, no RPC;
//   2. CheckAccount: the account it names exists and is active, asked of account-service
//      (CheckAccount RPC) unless this gateway confirmed it within account_check_cache_ttl_ms.
// The router never sees a token: it gets the verified Identity.
//
// Both run once per connection, never per frame.
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/token.h"

namespace chat::gateway {

// Who a connection speaks for.
struct Identity {
  uint64_t user_id = 0;  // 0 = not authenticated
  std::string device_id;
};

// What account-service says of an account. The seam to account-service, faked in tests.
class AccountDirectory {
 public:
  enum class Answer {
    kActive,       // exists and may sign in
    kNotActive,    // no such account, or deactivated
    kUnreachable,  // no answer within the RPC deadline, or the service failed
  };
  virtual ~AccountDirectory() = default;
  // Calls `done` exactly once, on any thread (possibly inline), within the RPC deadline.
  virtual void Check(uint64_t user_id, std::function<void(Answer)> done) = 0;
  // Checks started and not yet answered (the gateway waits for 0 before it is destroyed).
  virtual int64_t inflight() const { return 0; }
};

// AccountDirectory over the account shards' CheckAccount RPC (gRPC callback API).
std::unique_ptr<AccountDirectory> MakeGrpcAccountDirectory(const ClusterConfig& config);

// The accounts this gateway recently confirmed active: user id -> when, LRU-bounded. A fresh entry
// (younger than the TTL) spares the RPC; an entry of any age admits its user while account-service
// is unreachable. Thread-safe (one mutex; every operation is O(1)).
class AccountCache {
 public:
  AccountCache(uint32_t ttl_ms, uint32_t max_entries) : ttl_ms_(ttl_ms), max_entries_(max_entries) {}
  enum class Entry { kNone, kStale, kFresh };
  Entry Look(uint64_t user_id, int64_t now_ms) const;
  // Records a confirmation at now_ms (evicting the least recently confirmed beyond max_entries).
  void Confirm(uint64_t user_id, int64_t now_ms);
  // Forgets the user: the next connection asks account-service again.
  void Invalidate(uint64_t user_id);
  size_t size() const;

 private:
  struct Item {
    int64_t confirmed_ms;
    std::list<uint64_t>::iterator lru;  // position in lru_ (front = most recently confirmed)
  };
  const uint32_t ttl_ms_;
  const uint32_t max_entries_;
  mutable std::mutex mu_;
  std::list<uint64_t> lru_;
  std::unordered_map<uint64_t, Item> items_;
};

class Authenticator {
 public:
  enum class AccountVerdict {
    kAdmit,        // active account (confirmed now, recently, or last known while unreachable)
    kNoAccount,    // account-service says no such active account: refuse like an invalid token
    kUnavailable,  // account-service unreachable and the account not in the cache: retry later
  };

  // `directory` may be null (no account check: unit tests of Verify only). `steady_ms` is the clock
  // of the cache (SteadyMs when empty).
  Authenticator(TokenKeys keys, const GatewayLimits& limits, std::unique_ptr<AccountDirectory> directory,
                std::function<int64_t()> steady_ms = {});

  // Step 1. The identity a valid, unexpired token names; nullopt (and *error) otherwise.
  // Thread-safe, no RPC.
  std::optional<Identity> Verify(std::string_view token, TokenError* error) const;
  // Step 2, after Verify. Calls `done` exactly once: inline on the caller's thread when the cache
  // answers, else on a gRPC thread (callers post to their strand). Concurrent checks of one user
  // share one RPC. Thread-safe.
  void CheckAccount(uint64_t user_id, std::function<void(AccountVerdict)> done);
  // The hook for account deactivation and token revocation (identity issue): forget the user, so
  // its next connection asks account-service. Sessions already open are not closed by this.
  // Thread-safe.
  void InvalidateAccount(uint64_t user_id) { cache_.Invalidate(user_id); }
  // Account checks in flight (Gateway::Stop waits for 0).
  int64_t inflight() const { return directory_ ? directory_->inflight() : 0; }

  // What a client is told about a refused token.
  static const char* Refusal(TokenError error);
  static const char* Refusal(AccountVerdict verdict);

  const AccountCache& cache() const { return cache_; }

 private:
  void Answered(uint64_t user_id, AccountDirectory::Answer answer);

  TokenSigner signer_;
  std::unique_ptr<AccountDirectory> directory_;
  std::function<int64_t()> steady_ms_;
  AccountCache cache_;
  std::mutex mu_;                                                                           // guards waiting_
  std::unordered_map<uint64_t, std::vector<std::function<void(AccountVerdict)>>> waiting_;  // one RPC per user
};

}  // namespace chat::gateway
