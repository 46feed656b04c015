// CachingFriendChecker (common/friends.h): what chat-service remembers about who takes whose direct
// messages, against a counting fake.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>

#include "common/friends.h"
#include "common/status.h"

namespace chat {
namespace {

using namespace std::chrono_literals;

// Answers InboundAsync from `verdicts` (recipient, sender) -> verdict, kNotFriend when absent; with
// `hold`, keeps the callback until Release().
class CountingInbound : public FriendChecker {
 public:
  Result<FriendSet> FriendsAmong(uint64_t, const std::vector<uint64_t>&) override {
    ++friends_calls;
    return FriendSet{};
  }
  void InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) override {
    ++calls;
    if (down) return done(Unavailable("account service unavailable, retry"));
    auto it = verdicts.find({recipient, sender});
    const Inbound v = it == verdicts.end() ? Inbound::kNotFriend : it->second;
    if (hold) {
      held = [done = std::move(done), v] { done(v); };
      return;
    }
    done(v);
  }
  void Release() { std::exchange(held, nullptr)(); }

  std::map<std::pair<uint64_t, uint64_t>, Inbound> verdicts;
  int calls = 0;
  int friends_calls = 0;
  bool down = false;
  bool hold = false;
  std::function<void()> held;
};

// The verdict of one InboundAsync (the fakes answer inline unless holding).
Result<Inbound> Ask(FriendChecker& c, uint64_t recipient, uint64_t sender) {
  std::optional<Result<Inbound>> got;
  c.InboundAsync(recipient, sender, [&](Result<Inbound> r) { got.emplace(std::move(r)); });
  EXPECT_TRUE(got.has_value());
  return got.value_or(Result<Inbound>(Internal("no answer")));
}

TEST(FriendCache, RemembersAcceptanceOneDirectionAtATime) {
  CountingInbound inner;
  inner.verdicts = {{{1, 2}, Inbound::kAccepted}, {{2, 1}, Inbound::kRejected}};  // 1 blocked by 2
  CachingFriendChecker cache(inner, 1h);
  EXPECT_FALSE(cache.KnownAccepted(1, 2));
  ASSERT_TRUE(Ask(cache, 1, 2).ok());
  EXPECT_EQ(*Ask(cache, 1, 2), Inbound::kAccepted);
  EXPECT_EQ(inner.calls, 1) << "the second answer came from the cache";
  EXPECT_TRUE(cache.KnownAccepted(1, 2));
  // The other direction is its own question: 2 blocked 1.
  EXPECT_FALSE(cache.KnownAccepted(2, 1));
  EXPECT_EQ(*Ask(cache, 2, 1), Inbound::kRejected);
  EXPECT_EQ(*Ask(cache, 2, 1), Inbound::kRejected);
  EXPECT_EQ(inner.calls, 3) << "refusals are never cached";
  EXPECT_EQ(*Ask(cache, 3, 1), Inbound::kNotFriend);
  EXPECT_EQ(*Ask(cache, 3, 1), Inbound::kNotFriend);
  EXPECT_EQ(inner.calls, 5);
}

TEST(FriendCache, AContactChangeEndsBothDirectionsAtOnce) {
  CountingInbound inner;
  inner.verdicts = {{{1, 2}, Inbound::kAccepted}, {{2, 1}, Inbound::kAccepted}, {{1, 3}, Inbound::kAccepted}};
  CachingFriendChecker cache(inner, 1h);
  EXPECT_TRUE(Ask(cache, 1, 2).ok());
  EXPECT_TRUE(Ask(cache, 2, 1).ok());
  EXPECT_TRUE(Ask(cache, 1, 3).ok());
  ASSERT_TRUE(cache.KnownAccepted(1, 2) && cache.KnownAccepted(2, 1) && cache.KnownAccepted(1, 3));
  inner.verdicts[{2, 1}] = Inbound::kRejected;  // 2 blocks 1; account-service tells this replica
  cache.Forget(2, 1);
  EXPECT_FALSE(cache.KnownAccepted(1, 2));
  EXPECT_FALSE(cache.KnownAccepted(2, 1));
  EXPECT_TRUE(cache.KnownAccepted(1, 3)) << "other pairs keep their answers";
  EXPECT_EQ(*Ask(cache, 2, 1), Inbound::kRejected);
  cache.Clear();
  EXPECT_FALSE(cache.KnownAccepted(1, 3));
}

// An answer that was in flight when a change arrived may predate it: it is passed on, not kept.
TEST(FriendCache, AnAnswerAskedBeforeAChangeIsNotRemembered) {
  CountingInbound inner;
  inner.verdicts = {{{1, 2}, Inbound::kAccepted}};
  inner.hold = true;
  CachingFriendChecker cache(inner, 1h);
  std::optional<Result<Inbound>> got;
  cache.InboundAsync(1, 2, [&](Result<Inbound> r) { got.emplace(std::move(r)); });
  ASSERT_FALSE(got.has_value());
  cache.Forget(1, 2);
  inner.Release();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(**got, Inbound::kAccepted);
  EXPECT_FALSE(cache.KnownAccepted(1, 2));
}

TEST(FriendCache, ZeroTtlAlwaysAsks) {
  CountingInbound inner;
  inner.verdicts = {{{1, 2}, Inbound::kAccepted}};
  CachingFriendChecker cache(inner, 0ms);
  EXPECT_EQ(*Ask(cache, 1, 2), Inbound::kAccepted);
  EXPECT_FALSE(cache.KnownAccepted(1, 2));
  EXPECT_EQ(*Ask(cache, 1, 2), Inbound::kAccepted);
  EXPECT_EQ(inner.calls, 2);
}

TEST(FriendCache, AnUnknownAnswerIsAnErrorNotARefusal) {
  CountingInbound inner;
  inner.verdicts = {{{1, 2}, Inbound::kAccepted}};
  inner.down = true;
  CachingFriendChecker cache(inner, 1h);
  Result<Inbound> r = Ask(cache, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), v1::UNAVAILABLE);
  EXPECT_FALSE(cache.KnownAccepted(1, 2));
  inner.down = false;
  EXPECT_EQ(*Ask(cache, 1, 2), Inbound::kAccepted);
  EXPECT_TRUE(cache.KnownAccepted(1, 2));
}

TEST(FriendCache, IsBoundedInEntries) {
  CountingInbound inner;
  for (uint64_t i = 2; i < 10; ++i) inner.verdicts[{1, i}] = Inbound::kAccepted;
  CachingFriendChecker cache(inner, 1h, /*max_entries=*/4);
  for (uint64_t i = 2; i < 10; ++i) EXPECT_TRUE(Ask(cache, 1, i).ok());
  int known = 0;
  for (uint64_t i = 2; i < 10; ++i) known += cache.KnownAccepted(1, i);
  EXPECT_LE(known, 4);
  EXPECT_GE(known, 1);
}

TEST(FriendCache, FriendsAmongIsAskedEveryTime) {
  CountingInbound inner;
  CachingFriendChecker cache(inner, 1h);
  ASSERT_TRUE(cache.FriendsAmong(1, {2}).ok());
  ASSERT_TRUE(cache.FriendsAmong(1, {2}).ok());
  EXPECT_EQ(inner.friends_calls, 2);
}

}  // namespace
}  // namespace chat
