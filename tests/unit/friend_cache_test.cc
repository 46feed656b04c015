// CachingFriendChecker (common/friends.h): what chat-service remembers about friendships, against a
// counting fake.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "common/friends.h"
#include "common/status.h"

namespace chat {
namespace {

using namespace std::chrono_literals;

class CountingFriends : public FriendChecker {
 public:
  grpc::Status FriendsAmong(uint64_t u, const std::vector<uint64_t>& others,
                            std::unordered_set<uint64_t>* friends) override {
    ++calls;
    asked.insert(asked.end(), others.begin(), others.end());
    if (down) return Unavailable("account service unavailable, retry");
    for (uint64_t o : others)
      if (pairs.count(std::minmax(u, o))) friends->insert(o);
    return grpc::Status::OK;
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

  std::unordered_set<uint64_t> f;
  ASSERT_TRUE(cache.FriendsAmong(1, {2, 4}, &f).ok());
  EXPECT_EQ(f, (std::unordered_set<uint64_t>{2}));
  EXPECT_EQ(inner.calls, 1);
  // Symmetric, and known without asking.
  EXPECT_TRUE(cache.KnownFriends(2, 1));
  EXPECT_TRUE(cache.KnownFriends(1, 2));

  f.clear();
  inner.asked.clear();
  ASSERT_TRUE(cache.FriendsAmong(1, {2, 3, 4}, &f).ok());
  EXPECT_EQ(f, (std::unordered_set<uint64_t>{2, 3}));
  EXPECT_EQ(inner.calls, 2);
  // 2 came from the cache; the stranger 4 is asked again (negative answers are never cached).
  EXPECT_EQ(inner.asked, (std::vector<uint64_t>{3, 4}));
}

TEST(FriendCache, ZeroTtlAlwaysAsks) {
  CountingFriends inner;
  inner.pairs = {{1, 2}};
  CachingFriendChecker cache(inner, 0ms);
  std::unordered_set<uint64_t> friends;
  ASSERT_TRUE(cache.FriendsAmong(1, {2}, &friends).ok());
  EXPECT_TRUE(friends.count(2));
  EXPECT_FALSE(cache.KnownFriends(1, 2));
  friends.clear();
  ASSERT_TRUE(cache.FriendsAmong(2, {1}, &friends).ok());
  EXPECT_TRUE(friends.count(1));
  EXPECT_EQ(inner.calls, 2);
}

TEST(FriendCache, AnUnknownAnswerIsAnErrorNotARefusal) {
  CountingFriends inner;
  inner.pairs = {{1, 2}};
  inner.down = true;
  CachingFriendChecker cache(inner, 1h);
  std::unordered_set<uint64_t> f;
  auto st = cache.FriendsAmong(1, {2}, &f);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(f.empty());
  EXPECT_FALSE(cache.KnownFriends(1, 2));
  inner.down = false;
  ASSERT_TRUE(cache.FriendsAmong(1, {2}, &f).ok());
  EXPECT_TRUE(cache.KnownFriends(1, 2));
}

TEST(FriendCache, IsBoundedInEntries) {
  CountingFriends inner;
  for (uint64_t i = 2; i < 10; ++i) inner.pairs.insert({1, i});
  CachingFriendChecker cache(inner, 1h, /*max_entries=*/4);
  std::unordered_set<uint64_t> f;
  ASSERT_TRUE(cache.FriendsAmong(1, {2, 3, 4, 5, 6, 7, 8, 9}, &f).ok());
  EXPECT_EQ(f.size(), 8u);
  int known = 0;
  for (uint64_t i = 2; i < 10; ++i) known += cache.KnownFriends(1, i);
  EXPECT_LE(known, 4);
  EXPECT_GE(known, 1);
}

}  // namespace
}  // namespace chat
