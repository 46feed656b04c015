// CodeSendBudget: the per-replica token bucket of codes sent, driven by explicit times.
#include "account/code_budget.h"

#include <gtest/gtest.h>

namespace chat::account {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

TEST(CodeSendBudgetTest, StartsFullAndRefillsEvenlyOverAMinute) {
  CodeSendBudget b(60);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(b.TryTake(kT0)) << i;
  EXPECT_FALSE(b.TryTake(kT0));
  EXPECT_FALSE(b.TryTake(kT0 + 999));
  EXPECT_TRUE(b.TryTake(kT0 + 1000));  // 60 per minute = one per second
  EXPECT_FALSE(b.TryTake(kT0 + 1000));
  // Never more than a minute's worth, however long it was idle.
  int taken = 0;
  while (b.TryTake(kT0 + 3'600'000)) ++taken;
  EXPECT_EQ(taken, 60);
}

TEST(CodeSendBudgetTest, RefundGivesATokenBackAndBackwardClockRefillsNothing) {
  CodeSendBudget b(1);
  EXPECT_TRUE(b.TryTake(kT0));
  EXPECT_FALSE(b.TryTake(kT0 - 120'000));
  EXPECT_FALSE(b.TryTake(kT0));
  b.Refund();
  EXPECT_TRUE(b.TryTake(kT0));
  b.Refund();
  b.Refund();  // not beyond the capacity
  EXPECT_TRUE(b.TryTake(kT0));
  EXPECT_FALSE(b.TryTake(kT0));
}

TEST(CodeSendBudgetTest, ZeroBudgetSendsNothing) {
  CodeSendBudget b(0);
  EXPECT_FALSE(b.TryTake(kT0));
  EXPECT_FALSE(b.TryTake(kT0 + 3'600'000));
}

}  // namespace
}  // namespace chat::account
