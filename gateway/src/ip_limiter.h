#pragma once
// Per-client-address limits on the gateway's front door: concurrent connections and the rate of
// new ones. The address is the one admission.h decides (the TCP peer, or the source a trusted
// balancer's PROXY header names); Acquire is called before any byte of HTTP is read. Thread-safe (one mutex, held for a
// map lookup). A Slot is held for the lifetime of a connection and gives its place back when destroyed.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "rate_limiter.h"

namespace chat::gateway {

class IpLimiter {
 public:
  IpLimiter(uint32_t max_per_ip, uint32_t new_per_second, uint32_t new_burst)
      : max_per_ip_(max_per_ip), rate_(new_per_second), burst_(new_burst) {}

  enum class Verdict { kOk, kTooMany, kTooFast };

  class Slot {
   public:
    Slot(IpLimiter* owner, std::string ip) : owner_(owner), ip_(std::move(ip)) {}
    ~Slot() { owner_->Release(ip_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    const std::string& client() const { return ip_; }  // the address key it was acquired for

   private:
    IpLimiter* owner_;
    std::string ip_;
  };

  // On kOk, *slot holds the connection's place. now_ms: a monotonic clock.
  Verdict Acquire(const std::string& ip, int64_t now_ms, std::unique_ptr<Slot>* slot) {
    std::lock_guard lk(mu_);
    if (++calls_ % 4096 == 0) Sweep(now_ms);
    auto [it, inserted] = by_ip_.try_emplace(ip, rate_, burst_);
    Entry& e = it->second;
    e.last_ms = now_ms;
    if (e.open >= max_per_ip_) return Verdict::kTooMany;
    if (!e.bucket.TryTake(now_ms)) return Verdict::kTooFast;
    ++e.open;
    *slot = std::make_unique<Slot>(this, ip);
    return Verdict::kOk;
  }

  size_t tracked() const {
    std::lock_guard lk(mu_);
    return by_ip_.size();
  }
  // Drops entries that are idle and refilled (also done every 4096 Acquire calls).
  void SweepNow(int64_t now_ms) {
    std::lock_guard lk(mu_);
    Sweep(now_ms);
  }

 private:
  struct Entry {
    Entry(uint32_t rate, uint32_t burst) : bucket(rate, burst) {}
    uint32_t open = 0;
    int64_t last_ms = 0;
    TokenBucket bucket;
  };
  // An entry lives while its address has a connection open or its bucket is still refilling, so
  // connect-close churn cannot reset the rate limit; memory is bounded by the addresses active
  // within one refill period (burst / rate).
  void Release(const std::string& ip) {
    std::lock_guard lk(mu_);
    auto it = by_ip_.find(ip);
    if (it != by_ip_.end() && it->second.open > 0) --it->second.open;
  }
  void Sweep(int64_t now_ms) {
    const int64_t refill_ms = rate_ == 0 ? INT64_MAX / 2 : int64_t(burst_) * 1000 / rate_ + 1;
    for (auto it = by_ip_.begin(); it != by_ip_.end();) {
      if (it->second.open == 0 && now_ms - it->second.last_ms > refill_ms)
        it = by_ip_.erase(it);
      else
        ++it;
    }
  }

  const uint32_t max_per_ip_;
  const uint32_t rate_;
  const uint32_t burst_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> by_ip_;
  uint64_t calls_ = 0;
};

}  // namespace chat::gateway
