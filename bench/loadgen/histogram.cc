#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bench {

// Index layout: values < 64 map to themselves (group 0). A value with highest set bit e >= 6 goes
// to group e-5, sub-bucket = the 6 bits below the top bit. Each group spans [2^e, 2^(e+1)).
int Histogram::IndexOf(uint64_t v) {
  if (v < static_cast<uint64_t>(kSub)) return static_cast<int>(v);
  int e = 63 - std::countl_zero(v);
  if (e >= kMaxExp) return kBuckets - 1;
  int group = e - kSubBits + 1;
  int sub = static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
  return group * kSub + sub;
}

uint64_t Histogram::LowerBound(int index) {
  int group = index / kSub, sub = index % kSub;
  if (group == 0) return static_cast<uint64_t>(sub);
  int e = group + kSubBits - 1;
  return (uint64_t{1} << e) + (static_cast<uint64_t>(sub) << (e - kSubBits));
}

uint64_t Histogram::UpperBound(int index) {
  int group = index / kSub;
  if (group == 0) return LowerBound(index);
  int e = group + kSubBits - 1;
  return LowerBound(index) + (uint64_t{1} << (e - kSubBits)) - 1;
}

void Histogram::Record(uint64_t v) {
  ++counts_[IndexOf(v)];
  ++count_;
  sum_ += v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void Histogram::Merge(const Histogram& o) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

void Histogram::Clear() { *this = Histogram(); }

uint64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1.0) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(UpperBound(i), max_);
  }
  return max_;
}

}  // namespace bench
