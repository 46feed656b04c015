#pragma once
// Per-user quotas shared by every process of the cluster: token buckets in Redis, keyed by user, so
// a user's eight connections on three gateways draw on one budget. A quota is "capacity per window":
// a bucket of `capacity` tokens, refilled continuously at capacity/window and full when unused for a
// window. A request takes `cost` tokens from one or more buckets, all or nothing; when any of them
// holds too few, nothing is taken and the caller learns how long until the request would pass (the
// retry-after every refusal carries to the client).
//
// Redis keys: one per user and quota set (the specs one UserQuotas is made with), "rl:{<user_id>}:
// s:<name>+<name>...", a string "<ts> <tokens>..." (ts: ms of Redis's clock; the tokens of each quota
// in spec order) expiring one longest window after its last charge (full buckets need no key). So a
// batch costs Redis two calls per user, not three per bucket. The braces keep one user's keys in one
// Redis Cluster slot. Redis's own clock (TIME) is the only clock, so the processes' clocks
// never disagree about a bucket.
//
// Redis unreachable (or slower than `timeout_ms`): the verdict comes from buckets kept in this
// process with the same rates, for `local_hold_ms` before Redis is tried again. So a write is never
// let through unlimited (the limit still bites, per process instead of per cluster: at worst a user
// gets the budget once per process that serves them) and never refused only because Redis is down,
// which would turn a Redis outage into a chat outage. Callers that only read do not charge quotas.
//
// Threads: thread-safe. Take blocks the calling thread for one Redis round trip (one script call
// for all the requests passed together); callers batch.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/error.h"

namespace chat {

class RedisClient;

struct QuotaSpec {
  std::string name;       // part of the Redis key; [a-z_]+
  uint64_t capacity = 0;  // tokens per window; 0 = unlimited (the quota is never charged)
  int64_t window_ms = 1;  // >= 1
};

// `cost` tokens of quota `quota` (an index into the specs) of user `user_id`.
struct QuotaCharge {
  size_t quota = 0;
  uint64_t user_id = 0;
  uint64_t cost = 1;
};

struct QuotaOptions {
  int timeout_ms = 200;          // one Redis round trip; beyond it the local buckets decide
  int64_t local_hold_ms = 1000;  // after a Redis failure, how long the local buckets decide alone
};

inline QuotaOptions QuotaOptionsFrom(const Limits& limits) {
  return {.timeout_ms = static_cast<int>(limits.common.user_quota_timeout_ms)};
}

class UserQuotas {
 public:
  UserQuotas(RedisConfig redis, std::vector<QuotaSpec> specs, QuotaOptions options = {});
  ~UserQuotas();
  UserQuotas(const UserQuotas&) = delete;
  UserQuotas& operator=(const UserQuotas&) = delete;

  // For each request (its charges taken all or nothing, in order, so a later request sees the tokens
  // an earlier one took): 0 when it passed, else the milliseconds until it would (>= 1). A charge of
  // an unlimited quota always passes; a cost above the capacity counts as the capacity (one request
  // larger than the whole quota waits for a full bucket, never forever).
  std::vector<int64_t> Take(const std::vector<std::vector<QuotaCharge>>& requests);
  int64_t TakeOne(const std::vector<QuotaCharge>& request) {
    return Take(std::vector<std::vector<QuotaCharge>>{request})[0];
  }

  // True while verdicts come from the local buckets (Redis failed within local_hold_ms).
  bool degraded() const;
  const std::vector<QuotaSpec>& specs() const { return specs_; }

 private:
  struct LocalBucket {
    double tokens = 0;
    int64_t ts_ms = 0;
  };
  std::string SetKey(uint64_t user_id) const;  // the Redis key of a user's buckets
  bool TakeFromRedis(const std::vector<std::vector<QuotaCharge>>& requests, std::vector<int64_t>* out);
  void TakeLocally(const std::vector<std::vector<QuotaCharge>>& requests, std::vector<int64_t>* out);

  const std::vector<QuotaSpec> specs_;
  std::string set_name_;  // the spec names joined by '+'; set in the constructor
  const QuotaOptions options_;
  std::unique_ptr<RedisClient> redis_;
  mutable std::mutex mu_;  // guards what follows
  int64_t redis_failed_at_ms_ = -1;
  std::unordered_map<std::string, LocalBucket> local_;  // key as in Redis
  size_t local_charges_since_sweep_ = 0;
};

// The refusal a client sees for a quota: RESOURCE_EXHAUSTED, `what` in the message, and the wait.
Status QuotaExceeded(const std::string& what, int64_t retry_after_ms);

}  // namespace chat
