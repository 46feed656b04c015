// CachingFriendChecker (common/friends.h): what chat-service remembers about friendships, against a
// counting fake.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <set>

#include "common/friends.h"
#include "common/status.h"

namespace chat {
namespace {

using namespace std::chrono_literals;

class CountingFriends : public FriendChecker {
 public:
  Result<FriendSet> FriendsAmong(uint64_t u, const std::vector<uint64_t>& others) override {
    ++calls;
    asked.insert(asked.end(), others.begin(), others.end());
    if (down) return Unavailable("account service unavailable, retry");
    FriendSet friends;
    for (uint64_t o : others)
      if (pairs.count(std::minmax(u, o))) friends.insert(o);
    return friends;
  }
  std::set<std::pair<uint64_t, uint64_t>> pairs;
  int calls = 0;
  std::vector<uint64_t> asked;
  bool down = false;
};

TEST(FriendCache, RemembersFriendsAndAsksOnlyForTheRestInOneCall) {
  CountingFriends inner;
  inner.pairs = {{1, 2}, {1, 3}};
  CachingFriendChecker cache(inner, 1h);
  EXPECT_FALSE(cache.KnownFriends(1, 2));

  Result<FriendSet> f = cache.FriendsAmong(1, {2, 4});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, (FriendSet{2}));
  EXPECT_EQ(inner.calls, 1);
  // Symmetric, and known without asking.
  EXPECT_TRUE(cache.KnownFriends(2, 1));
  EXPECT_TRUE(cache.KnownFriends(1, 2));

  inner.asked.clear();
  f = cache.FriendsAmong(1, {2, 3, 4});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, (FriendSet{2, 3}));
  EXPECT_EQ(inner.calls, 2);
  // 2 came from the cache; the stranger 4 is asked again (negative answers are never cached).
  EXPECT_EQ(inner.asked, (std::vector<uint64_t>{3, 4}));
}

TEST(FriendCache, ZeroTtlAlwaysAsks) {
  CountingFriends inner;
  inner.pairs = {{1, 2}};
  CachingFriendChecker cache(inner, 0ms);
  Result<FriendSet> friends = cache.FriendsAmong(1, {2});
  ASSERT_TRUE(friends.ok());
  EXPECT_TRUE(friends->count(2));
  EXPECT_FALSE(cache.KnownFriends(1, 2));
  friends = cache.FriendsAmong(2, {1});
  ASSERT_TRUE(friends.ok());
  EXPECT_TRUE(friends->count(1));
  EXPECT_EQ(inner.calls, 2);
}

TEST(FriendCache, AnUnknownAnswerIsAnErrorNotARefusal) {
  CountingFriends inner;
  inner.pairs = {{1, 2}};
  inner.down = true;
  CachingFriendChecker cache(inner, 1h);
  Result<FriendSet> f = cache.FriendsAmong(1, {2});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), v1::UNAVAILABLE);
  EXPECT_FALSE(cache.KnownFriends(1, 2));
  inner.down = false;
  ASSERT_TRUE(cache.FriendsAmong(1, {2}).ok());
  EXPECT_TRUE(cache.KnownFriends(1, 2));
}

TEST(FriendCache, IsBoundedInEntries) {
  CountingFriends inner;
  for (uint64_t i = 2; i < 10; ++i) inner.pairs.insert({1, i});
  CachingFriendChecker cache(inner, 1h, /*max_entries=*/4);
  Result<FriendSet> f = cache.FriendsAmong(1, {2, 3, 4, 5, 6, 7, 8, 9});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), 8u);
  int known = 0;
  for (uint64_t i = 2; i < 10; ++i) known += cache.KnownFriends(1, i);
  EXPECT_LE(known, 4);
  EXPECT_GE(known, 1);
}

// The asynchronous form answers cache hits without asking, asks only for the rest, remembers what
// it learned and reports an unknown answer as an error.
TEST(FriendCache, AsyncAsksOnlyForWhatItDoesNotKnow) {
  CountingFriends inner;
  inner.pairs = {{1, 2}, {1, 3}};
  CachingFriendChecker cache(inner, 1h);
  auto ask = [&](std::vector<uint64_t> others) {
    std::optional<Result<FriendSet>> got;
    cache.FriendsAmongAsync(1, std::move(others), [&](Result<FriendSet> r) { got.emplace(std::move(r)); });
    EXPECT_TRUE(got.has_value()) << "the fake answers inline, so the callback ran before the call returned";
    return got.value_or(Result<FriendSet>(Internal("no answer")));
  };
  Result<FriendSet> r = ask({2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (FriendSet{2}));
  EXPECT_EQ(inner.calls, 1);
  r = ask({2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (FriendSet{2}));
  EXPECT_EQ(inner.calls, 1) << "a cache hit asks nobody";
  inner.asked.clear();
  r = ask({2, 3, 4});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (FriendSet{2, 3}));
  EXPECT_EQ(inner.asked, (std::vector<uint64_t>{3, 4}));
  inner.down = true;
  r = ask({5});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), v1::UNAVAILABLE);
}

}  // namespace
}  // namespace chat
