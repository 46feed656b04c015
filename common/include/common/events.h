#pragma once
// The one event path. Every server-initiated event (a new message, a read position that moved, a
// friend request, a group change, and every event later features add) leaves a process through an
// EventPublisher: chat, group and account alike.
//
//   service --Publish--> EventPublisher (FanoutPublisher: an OrderedPool of fan-out workers)
//           --worker--> EventDelivery (Fanout: presence lookup + one Redis publish per gateway)
//
// Ordering: items with the same ordering key (OrderingKey: the conversation id, else the first
// recipient) run on one worker in the order they were published, so one conversation's events are
// never reordered; different keys run in parallel. Publish never blocks on the network.
//
// Events are doorbells: a lost one costs a push, never a message (clients sync). Events that must
// survive a crash between commit and publish are written to the transactional outbox
// (common/outbox.h) in the same transaction and carry its row id in FanoutItem::outbox_id; the
// publisher acknowledges such an item to the outbox only once its delivery went through.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fanout.h"

namespace chat {

// Seam: hand events to the event path. Thread-safe; never blocks on another service.
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  virtual void Publish(std::vector<FanoutItem> items) = 0;
};

// The key that orders an item: its conversation, else its first recipient, else "".
std::string_view OrderingKey(const FanoutItem& item, std::string& scratch);

// OrderedPool: `workers` threads, each with its own bounded FIFO queue. A job pushed under a key runs
// on worker WorkerOf(key), after every job pushed earlier under any key of that worker. The handler
// takes up to `max_per_round` jobs at a time. When a worker's queue holds `max_queued` jobs the oldest
// is dropped and counted (warned at most every 10 s): jobs here are doorbells.
//
// Threads: Push from any thread; the handler runs on worker threads only, one round at a time per
// worker, so state indexed by worker needs no lock. Stop drains every queue, then joins.
template <typename Job>
class OrderedPool {
 public:
  using Handler = std::function<void(size_t worker, std::vector<Job>& jobs)>;

  OrderedPool(std::string name, size_t workers, size_t max_queued, size_t max_per_round, Handler handler)
      : name_(std::move(name)),
        max_queued_(std::max<size_t>(1, max_queued)),
        max_per_round_(std::max<size_t>(1, max_per_round)),
        handler_(std::move(handler)) {
    for (size_t i = 0; i < std::max<size_t>(1, workers); ++i) workers_.push_back(std::make_unique<Worker>());
  }
  ~OrderedPool() { Stop(); }
  OrderedPool(const OrderedPool&) = delete;
  OrderedPool& operator=(const OrderedPool&) = delete;

  size_t size() const { return workers_.size(); }
  size_t WorkerOf(std::string_view key) const { return std::hash<std::string_view>()(key) % workers_.size(); }

  void Start() {
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker& w = *workers_[i];
      std::lock_guard lk(w.mu);
      if (w.thread.joinable() || w.stopping) continue;
      w.thread = std::thread([this, i] { Run(i); });
    }
  }
  // Drains what is queued, then joins. Jobs pushed afterwards are dropped.
  void Stop() {
    for (auto& w : workers_) {
      {
        std::lock_guard lk(w->mu);
        w->stopping = true;
      }
      w->cv.notify_all();
    }
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
  }

  // Thread-safe. Jobs of one call that share a worker keep their order.
  void Push(std::string_view key, Job job) { PushTo(WorkerOf(key), std::move(job)); }
  void PushTo(size_t worker, Job job) {
    Worker& w = *workers_.at(worker);
    {
      std::lock_guard lk(w.mu);
      if (w.stopping) return;
      if (w.queue.size() >= max_queued_) DropOldestLocked(w);
      w.queue.push_back(std::move(job));
    }
    w.cv.notify_one();
  }

  // Thread-safe. `jobs` go to `worker` in order, under one lock and with one wake-up (the
  // commit-order section pushes a whole batch).
  void PushBatch(size_t worker, std::vector<Job>&& jobs) {
    if (jobs.empty()) return;
    Worker& w = *workers_.at(worker);
    {
      std::lock_guard lk(w.mu);
      if (w.stopping) return;
      for (Job& j : jobs) {
        if (w.queue.size() >= max_queued_) DropOldestLocked(w);
        w.queue.push_back(std::move(j));
      }
    }
    w.cv.notify_one();
  }
  // Thread-safe: each job to the worker of key_of(job), one PushBatch per worker.
  template <typename KeyOf>
  void PushAll(std::vector<Job>&& jobs, KeyOf key_of) {
    if (workers_.size() == 1) return PushBatch(0, std::move(jobs));
    std::vector<std::vector<Job>> per(workers_.size());
    for (Job& j : jobs) {
      const size_t w = WorkerOf(key_of(j));
      per[w].push_back(std::move(j));
    }
    for (size_t w = 0; w < per.size(); ++w) PushBatch(w, std::move(per[w]));
  }

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    bool stopping = false;
    std::thread thread;
    uint64_t dropped_since_warning = 0;
    std::chrono::steady_clock::time_point last_warning;
  };

  void DropOldestLocked(Worker& w) {
    w.queue.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    ++w.dropped_since_warning;
    const auto now = std::chrono::steady_clock::now();
    if (now - w.last_warning >= std::chrono::seconds(10)) {
      spdlog::warn(
          "{}: a worker queue is full ({} events): dropped the oldest {} since the last warning; clients "
          "will catch up by sync",
          name_, max_queued_, w.dropped_since_warning);
      w.last_warning = now;
      w.dropped_since_warning = 0;
    }
  }

  void Run(size_t index) {
    Worker& w = *workers_[index];
    for (;;) {
      std::vector<Job> jobs;
      {
        std::unique_lock lk(w.mu);
        w.cv.wait(lk, [&] { return w.stopping || !w.queue.empty(); });
        if (w.queue.empty()) return;  // stopping and drained
        while (!w.queue.empty() && jobs.size() < max_per_round_) {
          jobs.push_back(std::move(w.queue.front()));
          w.queue.pop_front();
        }
      }
      try {
        handler_(index, jobs);
      } catch (const std::exception& e) {
        spdlog::warn("{}: a round of {} events failed: {}; clients will catch up by sync", name_, jobs.size(),
                     e.what());
      }
    }
  }

  const std::string name_;
  const size_t max_queued_;
  const size_t max_per_round_;
  const Handler handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<uint64_t> dropped_{0};
};

// The EventPublisher of services whose items are resolved already (account, group): an OrderedPool
// whose workers hand each round to `delivery` in one call, then acknowledge the outbox items of a
// round that went through to `acks` (may be null when nothing is published from an outbox).
class FanoutPublisher : public EventPublisher {
 public:
  FanoutPublisher(EventDelivery& delivery, OutboxAcks* acks, size_t workers = 2, size_t max_queued = 100000);
  ~FanoutPublisher() override { Stop(); }
  void Start() { pool_.Start(); }
  void Stop() { pool_.Stop(); }
  void Publish(std::vector<FanoutItem> items) override;
  uint64_t dropped() const { return pool_.dropped(); }

 private:
  void Round(std::vector<FanoutItem>& items);
  EventDelivery& delivery_;
  OutboxAcks* const acks_;
  OrderedPool<FanoutItem> pool_;
};

// Outbox ids of `items` (nonzero ones), to acknowledge after a successful delivery.
std::vector<uint64_t> OutboxIds(const std::vector<FanoutItem>& items);

// A resolved item as an outbox Delivery (every recipient in user_ids) and back; outbox topic "event".
inline constexpr const char* kOutboxEventTopic = "event";
internal::Delivery ToDelivery(const FanoutItem& item);
// False when `d` does not hold a valid event.
bool FromDelivery(const internal::Delivery& d, FanoutItem* item);

}  // namespace chat
