#pragma once
// The gateway's authentication step, whether the token arrives in the HTTP upgrade (Authorization
// header or access_token) or in an authenticate request. Two checks, in order:
//   1. Verify: the token itself (key id, HMAC, expiry), locally, no RPC;
//   2. CheckAccount: the account it names exists and is active, and the token's session is live
//      with the token's generation, asked of account-service (CheckAccount RPC) unless this gateway
//      confirmed that token within account_check_cache_ttl_ms. A revocation (Delivery.revocation,
//      broadcast to every gateway) forgets the user's confirmations at once.
// The router never sees a token: it gets the verified Identity.
//
// Both run once per connection, never per frame.
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/token.h"

namespace chat::gateway {

// Who a connection speaks for.
struct Identity {
  uint64_t user_id = 0;  // 0 = not authenticated
  std::string device_id;
  uint64_t session_id = 0;  // the token's account-service session (common/token.h)
  uint32_t token_gen = 0;   // which of that session's tokens; a refresh moves it on
};

// A token as the account check sees it.
struct TokenRef {
  uint64_t user_id = 0;
  uint64_t session_id = 0;
  uint32_t token_gen = 0;
  static TokenRef Of(const Identity& id) { return {id.user_id, id.session_id, id.token_gen}; }
  bool operator<(const TokenRef& o) const {
    return std::tie(user_id, session_id, token_gen) < std::tie(o.user_id, o.session_id, o.token_gen);
  }
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
  virtual void Check(const TokenRef& token, std::function<void(Answer)> done) = 0;
  // Checks started and not yet answered (the gateway waits for 0 before it is destroyed).
  virtual int64_t inflight() const { return 0; }
};

// AccountDirectory over the account shards' CheckAccount RPC (gRPC callback API).
std::unique_ptr<AccountDirectory> MakeGrpcAccountDirectory(const ClusterConfig& config);

// The tokens this gateway recently confirmed live: per user, up to kTokensPerUser (session,
// generation) pairs with when; LRU-bounded by users. A fresh entry (younger than the TTL) spares the
// RPC; an entry of any age admits its token while account-service is unreachable. Thread-safe (one
// mutex; every operation is O(kTokensPerUser)).
class AccountCache {
 public:
  static constexpr size_t kTokensPerUser = 8;
  AccountCache(uint32_t ttl_ms, uint32_t max_entries) : ttl_ms_(ttl_ms), max_entries_(max_entries) {}
  enum class Entry { kNone, kStale, kFresh };
  Entry Look(const TokenRef& token, int64_t now_ms) const;
  // Records a confirmation at now_ms (evicting the least recently confirmed user beyond max_entries,
  // and the user's oldest confirmation beyond kTokensPerUser).
  void Confirm(const TokenRef& token, int64_t now_ms);
  // Forgets every token of the user: the next connection asks account-service again.
  void Invalidate(uint64_t user_id);
  size_t size() const;  // users

 private:
  struct Token {
    uint64_t session_id;
    uint32_t token_gen;
    int64_t confirmed_ms;
  };
  struct Item {
    std::vector<Token> tokens;
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
  // answers, else on a gRPC thread (callers post to their strand). Concurrent checks of one token
  // share one RPC. Thread-safe.
  void CheckAccount(const Identity& id, std::function<void(AccountVerdict)> done);
  // A revocation of the user's tokens (log-out, refresh, deletion): forget them, so its next
  // connection asks account-service. Closing open sessions is the hub's part. Thread-safe.
  void InvalidateAccount(uint64_t user_id) { cache_.Invalidate(user_id); }
  // Account checks in flight (Gateway::Stop waits for 0).
  int64_t inflight() const { return directory_ ? directory_->inflight() : 0; }

  // What a client is told about a refused token.
  static const char* Refusal(TokenError error);
  static const char* Refusal(AccountVerdict verdict);

  const AccountCache& cache() const { return cache_; }

 private:
  void Answered(const TokenRef& token, AccountDirectory::Answer answer);

  TokenSigner signer_;
  std::unique_ptr<AccountDirectory> directory_;
  std::function<int64_t()> steady_ms_;
  AccountCache cache_;
  std::mutex mu_;                                                                 // guards waiting_
  std::map<TokenRef, std::vector<std::function<void(AccountVerdict)>>> waiting_;  // one RPC per token
};

}  // namespace chat::gateway
