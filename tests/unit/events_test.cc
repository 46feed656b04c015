// The event path's pool and publisher (common/events.h), with fakes: one key's jobs keep their order
// across workers and concurrent publishers, and outbox items are acknowledged only after a delivery
// that went through.
#include "common/events.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace chat {
namespace {

TEST(OrderedPool, EachKeysJobsRunInPushOrderAcrossWorkersAndPublishers) {
  struct Job {
    int key;
    int n;
  };
  std::mutex mu;
  std::map<int, std::vector<int>> seen;  // key -> n in the order handled
  std::map<size_t, std::set<int>> keys_of_worker;
  OrderedPool<Job> pool("test", 4, 1 << 20, 7, [&](size_t worker, std::vector<Job>& jobs) {
    std::lock_guard lk(mu);
    for (const Job& j : jobs) {
      seen[j.key].push_back(j.n);
      keys_of_worker[worker].insert(j.key);
    }
  });
  pool.Start();
  constexpr int kKeys = 16, kPerKey = 500;
  // Four publishers; each key belongs to one publisher (as one conversation's commits are ordered by
  // one commit section), interleaved with the others' keys.
  std::vector<std::thread> publishers;
  for (int p = 0; p < 4; ++p)
    publishers.emplace_back([&, p] {
      for (int n = 0; n < kPerKey; ++n)
        for (int key = p; key < kKeys; key += 4) pool.Push("k" + std::to_string(key), Job{key, n});
    });
  for (auto& t : publishers) t.join();
  pool.Stop();  // drains
  ASSERT_EQ(seen.size(), static_cast<size_t>(kKeys));
  for (const auto& [key, ns] : seen) {
    ASSERT_EQ(ns.size(), static_cast<size_t>(kPerKey)) << "key " << key;
    for (int n = 0; n < kPerKey; ++n) ASSERT_EQ(ns[n], n) << "key " << key << " out of order";
  }
  EXPECT_GT(keys_of_worker.size(), 1u) << "the keys should spread over several workers";
  for (const auto& [w, keys] : keys_of_worker) {
    for (const auto& [w2, keys2] : keys_of_worker) {
      if (w == w2) continue;
      for (int k : keys) EXPECT_FALSE(keys2.count(k)) << "key " << k << " ran on two workers";
    }
  }
}

TEST(OrderedPool, AFullWorkerQueueDropsItsOldestJobs) {
  std::vector<int> handled;
  OrderedPool<int> pool("test", 1, /*max_queued=*/3, 100, [&](size_t, std::vector<int>& jobs) {
    handled.insert(handled.end(), jobs.begin(), jobs.end());
  });
  for (int i = 1; i <= 5; ++i) pool.Push("k", i);  // not started: nothing drains
  EXPECT_EQ(pool.dropped(), 2u);
  pool.Start();
  pool.Stop();
  EXPECT_EQ(handled, (std::vector<int>{3, 4, 5}));
}

class FakeDelivery : public EventDelivery {
 public:
  explicit FakeDelivery(bool ok) : ok_(ok) {}
  bool DeliverNow(const std::vector<FanoutItem>& items) override {
    std::lock_guard lk(mu_);
    for (const auto& i : items) delivered.push_back(i.outbox_id);
    return ok_;
  }
  std::mutex mu_;
  std::vector<uint64_t> delivered;

 private:
  const bool ok_;
};

class FakeAcks : public OutboxAcks {
 public:
  void Ack(const std::vector<uint64_t>& ids) override {
    std::lock_guard lk(mu_);
    acked.insert(acked.end(), ids.begin(), ids.end());
  }
  std::mutex mu_;
  std::vector<uint64_t> acked;
};

std::vector<FanoutItem> Items(std::vector<uint64_t> outbox_ids) {
  std::vector<FanoutItem> items;
  for (uint64_t id : outbox_ids) {
    FanoutItem& it = items.emplace_back();
    it.user_ids = {42};
    it.conversation_id = "d.1.42";
    it.event.mutable_read_position()->set_read_seq(id);
    it.outbox_id = id;
  }
  return items;
}

TEST(FanoutPublisher, AcknowledgesOutboxItemsOnlyAfterADeliveryThatWentThrough) {
  FakeAcks acks;
  {
    FakeDelivery failing(false);
    FanoutPublisher pub(failing, &acks, 2);
    pub.Start();
    pub.Publish(Items({5, 6}));
    pub.Stop();
    EXPECT_EQ(failing.delivered, (std::vector<uint64_t>{5, 6}));
  }
  EXPECT_TRUE(acks.acked.empty()) << "a failed delivery must leave the rows for the relay";
  {
    FakeDelivery working(true);
    FanoutPublisher pub(working, &acks, 2);
    pub.Start();
    pub.Publish(Items({0, 7, 8}));  // 0: not from the outbox
    pub.Stop();
    EXPECT_EQ(working.delivered, (std::vector<uint64_t>{0, 7, 8})) << "one key: in publish order";
  }
  EXPECT_EQ(acks.acked, (std::vector<uint64_t>{7, 8}));
}

TEST(FanoutPublisher, ADeliveryRoundTripsThroughAnOutboxRow) {
  FanoutItem item = Items({3})[0];
  item.skip_session_id = 9;
  FanoutItem back;
  internal::Delivery d;
  ASSERT_TRUE(d.ParseFromString(ToDelivery(item).SerializeAsString()));
  ASSERT_TRUE(FromDelivery(d, &back));
  EXPECT_EQ(back.user_ids, item.user_ids);
  EXPECT_EQ(back.skip_session_id, 9u);
  EXPECT_EQ(back.conversation_id, item.conversation_id);
  EXPECT_EQ(back.event.read_position().read_seq(), 3u);
  d.set_event("\xff\xff not an event");
  EXPECT_FALSE(FromDelivery(d, &back));
}

}  // namespace
}  // namespace chat
