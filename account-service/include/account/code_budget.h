#pragma once
// The budget of codes ONE account-service replica may send (limits.account.max_codes_per_shard_per_minute):
// a token bucket holding up to per_minute tokens, refilled evenly at per_minute per 60 s, starting
// full. It protects the SMS bill against pumping with many different numbers, which the per-phone
// limits cannot see. The contract is per replica, in process memory: a shard served by R replicas
// sends up to R times the budget, and a restart refills it.
//
// Threads: TryTake and Refund may be called concurrently. Times are the service's clock (unix ms);
// a clock going backwards refills nothing.
#include <cstdint>
#include <mutex>

namespace chat::account {

class CodeSendBudget {
 public:
  explicit CodeSendBudget(uint32_t per_minute);

  // Takes one token at now_ms; false (nothing taken) when the bucket is empty.
  bool TryTake(int64_t now_ms);
  // Gives back a token taken by TryTake for a code that was then not sent.
  void Refund();

 private:
  const double capacity_;
  std::mutex mu_;
  double tokens_;        // guarded by mu_
  int64_t last_ms_ = 0;  // guarded by mu_; time of the last refill, 0 = never
};

}  // namespace chat::account
