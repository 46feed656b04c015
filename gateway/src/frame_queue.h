#pragma once
// FrameQueue: a session's outgoing frames, first in first out. Unlike std::deque (which allocates
// its map and a 512-byte block even when empty) an empty FrameQueue owns no heap memory, which
// matters at 100k idle connections per gateway; a queue that drains gives back what a burst grew.
//
// Not thread-safe (a session's strand owns it).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace chat::gateway {

class FrameQueue {
 public:
  using Frame = std::shared_ptr<const std::string>;

  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  const Frame& front() const { return items_[head_]; }
  const Frame& operator[](size_t i) const { return items_[head_ + i]; }
  const Frame& back() const { return items_.back(); }

  void push_back(Frame f) { items_.push_back(std::move(f)); }

  void pop_front() {
    items_[head_++].reset();
    if (empty()) return clear();
    // Keep the dead prefix at most as long as the live part: amortized O(1) per frame.
    if (head_ > 32 && head_ * 2 > items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  void pop_back() {
    items_.pop_back();
    if (empty()) clear();
  }

  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > kKeepCapacity) items_.shrink_to_fit();
  }

  size_t capacity_for_test() const { return items_.capacity(); }

 private:
  static constexpr size_t kKeepCapacity = 4;  // a few slots stay for the next message or two
  std::vector<Frame> items_;
  size_t head_ = 0;
};

}  // namespace chat::gateway
