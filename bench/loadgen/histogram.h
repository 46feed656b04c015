#pragma once
// A fixed-size log-linear latency histogram (HdrHistogram-like): values in microseconds, 64
// sub-buckets per power of two, so any recorded value is reported within 1/64 (~1.6%) of itself.
// Exact below 64 us. Range 0 .. 2^40 us (~12.7 days); larger values land in the last bucket.
//
// Plain data (no pointers): it may live in memory shared between processes. Record() from one
// thread only; Merge/Percentile on a quiescent copy.
#include <cstdint>
#include <string>

namespace bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;  // 64
  static constexpr int kMaxExp = 40;          // values < 2^40 us
  static constexpr int kBuckets = (kMaxExp - kSubBits + 1) * kSub;

  void Record(uint64_t value_us);
  void Merge(const Histogram& other);
  void Clear();

  uint64_t Count() const { return count_; }
  uint64_t Max() const { return max_; }
  uint64_t Min() const { return count_ ? min_ : 0; }
  double Mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
  // Smallest bucket upper bound v such that at least q (0..1] of the values are <= v; max for q=1.
  uint64_t Percentile(double q) const;

  // Bucket index and its bounds; exposed for tests and the distribution dump.
  static int IndexOf(uint64_t value_us);
  static uint64_t LowerBound(int index);
  static uint64_t UpperBound(int index);  // inclusive
  uint64_t BucketCount(int index) const { return counts_[index]; }

 private:
  uint64_t counts_[kBuckets] = {};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace bench
