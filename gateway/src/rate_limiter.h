#pragma once
// Token bucket for per-session request rates. Not thread-safe: owned by one session strand.
#include <algorithm>
#include <chrono>
#include <cstdint>

namespace chat::gateway {

// The monotonic clock, in milliseconds, that the gateway's limiters and timers read.
inline int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class TokenBucket {
 public:
  TokenBucket(uint32_t rate_per_s, uint32_t burst)
      : rate_(rate_per_s), burst_(std::max<uint32_t>(burst, 1)), tokens_(burst_) {}
  // now_ms: any monotonic clock in milliseconds.
  bool TryTake(int64_t now_ms) {
    if (last_ms_ >= 0 && now_ms > last_ms_)
      tokens_ = std::min<double>(burst_, tokens_ + (now_ms - last_ms_) * rate_ / 1000.0);
    last_ms_ = std::max(last_ms_, now_ms);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  int64_t last_ms_ = -1;
};

}  // namespace chat::gateway
