// Per-user quotas (common/user_quota.h) against the real test Redis; every user id is unique to the
// test run, so parallel runs never share a bucket.
#include "common/user_quota.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "common/redis.h"
#include "test_env.h"

namespace chat {
namespace {

using chat::testing::ReservedPort;
using chat::testing::TestRedis;
using Clock = std::chrono::steady_clock;

uint64_t FreshUser() {
  static std::mt19937_64 rng(std::random_device{}());
  return (rng() >> 2) | 1;  // a positive int64, never 0
}

TEST(UserQuotas, RefusesBeyondCapacityWithTheWaitAndSharesTheBucketAcrossProcesses) {
  // Two objects stand for two processes (say two gateways' chat shards): one bucket between them.
  UserQuotas a(TestRedis(), {{"t_msg", 3, 60'000}});
  UserQuotas b(TestRedis(), {{"t_msg", 3, 60'000}});
  const uint64_t user = FreshUser();
  EXPECT_EQ(a.TakeOne({{0, user, 1}}), 0);
  EXPECT_EQ(b.TakeOne({{0, user, 1}}), 0);
  EXPECT_EQ(a.TakeOne({{0, user, 1}}), 0);
  const int64_t wait = b.TakeOne({{0, user, 1}});
  // One token refills in window / capacity = 20 s; a little of it has passed since the first take.
  EXPECT_GT(wait, 15'000);
  EXPECT_LE(wait, 20'000);
  EXPECT_FALSE(a.degraded());
  EXPECT_EQ(a.TakeOne({{0, FreshUser(), 1}}), 0) << "another user has a budget of their own";

  RedisClient redis(TestRedis());
  auto ttl = redis.Command({"PTTL", "rl:{" + std::to_string(user) + "}:s:t_msg"});
  ASSERT_TRUE(ttl.has_value());
  EXPECT_GT(ttl->integer, 0) << "a bucket key expires (a full bucket needs no key)";
  EXPECT_LE(ttl->integer, 60'000);
}

TEST(UserQuotas, ARequestIsAllOrNothingAndLaterRequestsSeeEarlierOnes) {
  UserQuotas q(TestRedis(), {{"t_count", 10, 60'000}, {"t_bytes", 100, 60'000}});
  const uint64_t user = FreshUser();
  EXPECT_EQ(q.TakeOne({{0, user, 1}, {1, user, 70}}), 0);
  // 30 bytes are left: a 40-byte request fails, and takes nothing from the count either.
  EXPECT_GT(q.TakeOne({{0, user, 1}, {1, user, 40}}), 0);
  // One batch: the first fits in the 30 bytes, the second does not, the third (small) does.
  const auto waits = q.Take(std::vector<std::vector<QuotaCharge>>{
      {{0, user, 1}, {1, user, 20}}, {{0, user, 1}, {1, user, 20}}, {{0, user, 1}, {1, user, 10}}});
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_EQ(waits[0], 0);
  EXPECT_GT(waits[1], 0);
  EXPECT_EQ(waits[2], 0);
  // 3 of the 10 counts were taken: the refused requests took none.
  for (int i = 0; i < 7; ++i) EXPECT_EQ(q.TakeOne({{0, user, 1}}), 0) << i;
  EXPECT_GT(q.TakeOne({{0, user, 1}}), 0);
}

TEST(UserQuotas, RefillsAfterTheWaitItAnnounced) {
  UserQuotas q(TestRedis(), {{"t_fast", 2, 300}});
  const uint64_t user = FreshUser();
  EXPECT_EQ(q.TakeOne({{0, user, 1}}), 0);
  EXPECT_EQ(q.TakeOne({{0, user, 1}}), 0);
  const int64_t wait = q.TakeOne({{0, user, 1}});
  ASSERT_GT(wait, 0);
  ASSERT_LE(wait, 150);
  // The announced wait is the event under test: after it, the request passes.
  std::this_thread::sleep_for(std::chrono::milliseconds(wait + 5));
  EXPECT_EQ(q.TakeOne({{0, user, 1}}), 0);
}

TEST(UserQuotas, UnlimitedQuotasNeedNoRedisAndAnOversizedCostWaitsForAFullBucket) {
  ReservedPort closed(ReservedPort::Use::kClosed);
  RedisConfig dead = TestRedis();
  dead.port = closed.port();
  UserQuotas off(dead, {{"t_off", 0, 1000}});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(off.TakeOne({{0, 1, 1'000'000}}), 0);
  EXPECT_FALSE(off.degraded()) << "nothing was charged, so Redis was never asked";

  UserQuotas q(TestRedis(), {{"t_small", 10, 10'000}});
  const uint64_t user = FreshUser();
  EXPECT_EQ(q.TakeOne({{0, user, 1000}}), 0) << "a cost above the capacity costs the whole (full) bucket";
  const int64_t wait = q.TakeOne({{0, user, 1000}});
  EXPECT_GT(wait, 9'000);
  EXPECT_LE(wait, 10'000) << "never longer than one window";
}

TEST(UserQuotas, WithoutRedisTheLimitStillBitesPerProcess) {
  ReservedPort closed(ReservedPort::Use::kClosed);  // nobody answers: Redis is down
  RedisConfig dead = TestRedis();
  dead.port = closed.port();
  UserQuotas q(dead, {{"t_down", 5, 60'000}}, {.timeout_ms = 100, .local_hold_ms = 60'000});
  const uint64_t user = FreshUser();
  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q.TakeOne({{0, user, 1}}), 0) << i;
  const int64_t wait = q.TakeOne({{0, user, 1}});
  EXPECT_GT(wait, 0) << "a write is never let through unlimited";
  EXPECT_LE(wait, 12'000);
  EXPECT_TRUE(q.degraded());
  EXPECT_EQ(q.TakeOne({{0, FreshUser(), 1}}), 0) << "others are not refused because Redis is down";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "one failed round trip, then local verdicts";
}

}  // namespace
}  // namespace chat
