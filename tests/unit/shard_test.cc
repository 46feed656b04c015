// Sharding is a pure function every process must agree on: pinned values, range, balance,
// minimal movement when the shard count grows, and the canonical conversation id grammar.
#include "common/shard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace chat {
namespace {

constexpr int kKeys = 100000;

TEST(JumpConsistentHash, MatchesPublishedValues) {
  // Values of the Lamping & Veach algorithm as published by an independent implementation
  // (ClickHouse's jumpConsistentHash test reference), plus ones computed from the paper's definition.
  EXPECT_EQ(JumpConsistentHash(1, 1), 0u);
  EXPECT_EQ(JumpConsistentHash(42, 57), 43u);
  EXPECT_EQ(JumpConsistentHash(256, 1024), 520u);
  EXPECT_EQ(JumpConsistentHash(3735883980ULL, 1), 0u);
  EXPECT_EQ(JumpConsistentHash(3735883980ULL, 666), 361u);
  EXPECT_EQ(JumpConsistentHash(16045690984833335023ULL, 255), 237u);
  EXPECT_EQ(JumpConsistentHash(1, 10), 6u);
  EXPECT_EQ(JumpConsistentHash(12345, 100), 29u);
  EXPECT_EQ(JumpConsistentHash(0xdeadbeefULL, 7), 5u);
  EXPECT_EQ(JumpConsistentHash(std::numeric_limits<uint64_t>::max(), 1000), 313u);
  EXPECT_EQ(JumpConsistentHash(7, 1u << 20), 339236u);
}

TEST(JumpConsistentHash, KeyZeroAndSingleBucketAlwaysZero) {
  for (uint32_t n : {1u, 2u, 3u, 16u, 1000u, 1u << 20}) EXPECT_EQ(JumpConsistentHash(0, n), 0u) << n;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(JumpConsistentHash(rng(), 1), 0u);
}

TEST(JumpConsistentHash, AlwaysInRange) {
  std::mt19937_64 rng(2);
  for (uint32_t n : {1u, 2u, 3u, 5u, 8u, 13u, 64u, 1000u}) {
    for (int i = 0; i < 20000; ++i) {
      uint64_t key = rng();
      ASSERT_LT(JumpConsistentHash(key, n), n) << "key " << key << " buckets " << n;
    }
  }
}

TEST(JumpConsistentHash, GrowingMovesOnlyTheNewShareAndOnlyToTheNewBucket) {
  for (uint32_t n = 1; n <= 16; ++n) {
    int moved = 0;
    for (int i = 0; i < kKeys; ++i) {
      uint64_t key = Mix64(static_cast<uint64_t>(i));
      uint32_t before = JumpConsistentHash(key, n);
      uint32_t after = JumpConsistentHash(key, n + 1);
      if (before != after) {
        ++moved;
        ASSERT_EQ(after, n) << "key " << key << " moved between old buckets when growing " << n << "->" << n + 1;
      }
    }
    double expected = static_cast<double>(kKeys) / (n + 1);
    // 1% of all keys is more than 6 standard deviations for every n here.
    EXPECT_NEAR(moved, expected, kKeys * 0.01) << "growing " << n << "->" << n + 1;
  }
}

// Every shard gets its fair share of kKeys ids, within 5% (about 6 standard deviations at 8 shards).
void ExpectBalanced(const std::function<uint32_t(int i, uint32_t shards)>& shard_of, const char* what) {
  for (uint32_t shards : {2u, 4u, 8u}) {
    std::vector<int> count(shards, 0);
    for (int i = 0; i < kKeys; ++i) {
      uint32_t s = shard_of(i, shards);
      ASSERT_LT(s, shards) << what;
      ++count[s];
    }
    double fair = static_cast<double>(kKeys) / shards;
    for (uint32_t s = 0; s < shards; ++s)
      EXPECT_NEAR(count[s], fair, fair * 0.05) << what << ": shard " << s << " of " << shards;
  }
}

TEST(Sharding, UsersBalanced) {
  // Sequential ids (worst case for a weak hash) and random 63-bit ids (what the cluster mints).
  ExpectBalanced([](int i, uint32_t n) { return ShardOfUser(static_cast<uint64_t>(i) + 1, n); }, "sequential users");
  std::mt19937_64 rng(3);
  std::vector<uint64_t> ids(kKeys);
  for (auto& id : ids) id = (rng() >> 1) | 1;
  ExpectBalanced([&](int i, uint32_t n) { return ShardOfUser(ids[i], n); }, "random users");
  ExpectBalanced([&](int i, uint32_t n) { return ShardOfGroup(ids[i], n); }, "random groups");
  ExpectBalanced([](int i, uint32_t n) { return ShardOfGroup(static_cast<uint64_t>(i) + 1, n); }, "sequential groups");
}

TEST(Sharding, ConversationsBalanced) {
  std::mt19937_64 rng(4);
  std::vector<std::string> direct(kKeys), group(kKeys), seq_direct(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    direct[i] = DirectConversationId((rng() >> 1) | 1, (rng() >> 1) | 1);
    group[i] = GroupConversationId((rng() >> 1) | 1);
    seq_direct[i] = DirectConversationId(1, static_cast<uint64_t>(i) + 2);  // one user's many chats
  }
  ExpectBalanced([&](int i, uint32_t n) { return ShardOfConversation(direct[i], n); }, "direct conversations");
  ExpectBalanced([&](int i, uint32_t n) { return ShardOfConversation(group[i], n); }, "group conversations");
  ExpectBalanced([&](int i, uint32_t n) { return ShardOfConversation(seq_direct[i], n); },
                 "one user's direct conversations");
  ExpectBalanced([](int i, uint32_t n) { return ShardOfConversation(GroupConversationId(i + 1), n); },
                 "sequential group conversations");
}

TEST(Sharding, PhonesBalanced) {
  // Consecutive numbers of one carrier block: the realistic worst case.
  ExpectBalanced(
      [](int i, uint32_t n) {
        std::string digits = std::to_string(5550000000LL + i);
        return ShardOfPhone("+1" + digits, n);
      },
      "phones");
}

TEST(Sharding, StableForFixedInputs) {
  // Same inputs, same answers, however often asked (no hidden state, no std::hash).
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(ShardOfUser(42, 8), ShardOfUser(42, 8));
    EXPECT_EQ(ShardOfConversation("d.1.2", 8), JumpConsistentHash(Fnv1a64("d.1.2"), 8));
    EXPECT_EQ(ShardOfUser(42, 8), JumpConsistentHash(Mix64(42), 8));
  }
  // FNV-1a 64 reference values (the standard offset basis and prime).
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
  // One shard: everything on shard 0.
  EXPECT_EQ(ShardOfUser(123, 1), 0u);
  EXPECT_EQ(ShardOfPhone("+15550001111", 1), 0u);
  EXPECT_EQ(ShardOfConversation("g.9", 1), 0u);
}

TEST(ConversationId, DirectIsOrderIndependent) {
  EXPECT_EQ(DirectConversationId(5, 3), "d.3.5");
  EXPECT_EQ(DirectConversationId(3, 5), "d.3.5");
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1000; ++i) {
    uint64_t a = (rng() >> 1) | 1, b = (rng() >> 1) | 1;
    EXPECT_EQ(DirectConversationId(a, b), DirectConversationId(b, a));
    EXPECT_EQ(ShardOfConversation(DirectConversationId(a, b), 8), ShardOfConversation(DirectConversationId(b, a), 8));
  }
  EXPECT_EQ(GroupConversationId(77), "g.77");
}

TEST(ConversationId, ParsesCanonicalIds) {
  auto d = ParseConversationId("d.3.5");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->kind, ParsedConversation::kDirect);
  EXPECT_EQ(d->a, 3u);
  EXPECT_EQ(d->b, 5u);

  auto g = ParseConversationId("g.77");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->kind, ParsedConversation::kGroup);
  EXPECT_EQ(g->a, 77u);

  auto big = ParseConversationId("g.18446744073709551615");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->a, std::numeric_limits<uint64_t>::max());

  std::mt19937_64 rng(6);
  for (int i = 0; i < 1000; ++i) {
    uint64_t a = (rng() >> 1) | 1, b = (rng() >> 1) | 1;
    if (a == b) continue;
    auto p = ParseConversationId(DirectConversationId(a, b));
    ASSERT_TRUE(p.has_value()) << DirectConversationId(a, b);
    EXPECT_EQ(p->kind, ParsedConversation::kDirect);
    EXPECT_EQ(p->a, std::min(a, b));
    EXPECT_EQ(p->b, std::max(a, b));
    auto q = ParseConversationId(GroupConversationId(a));
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->a, a);
  }
}

TEST(ConversationId, RejectsNonCanonicalIds) {
  for (const char* bad : {"",
                          "d",
                          "d.",
                          "g",
                          "g.",
                          "d.5",
                          "d.5.",
                          "d..5",
                          "d.5.5",
                          "d.7.3",
                          "d.01.2",
                          "d.1.02",
                          "d.0.2",
                          "g.0",
                          "g.00",
                          "g.01",
                          "g.-1",
                          "g.+1",
                          "x.1",
                          "G.1",
                          "D.1.2",
                          "g.1x",
                          "g.1 ",
                          " g.1",
                          "g 1",
                          "g,1",
                          "d.1.2.3",
                          "d.1-2",
                          "g.1.2",
                          "d.-1.2",
                          "g.١",
                          "g.18446744073709551616",
                          "g.99999999999999999999",
                          "g.100000000000000000000",
                          "d.1.18446744073709551616",
                          "d.18446744073709551616.18446744073709551617"}) {
    EXPECT_FALSE(ParseConversationId(bad).has_value()) << "accepted \"" << bad << "\"";
  }
  // An embedded NUL is not a digit either.
  EXPECT_FALSE(ParseConversationId(std::string_view("g.1\0", 4)).has_value());
}

TEST(QrToken, RoundTripsAndRefusesEverythingElse) {
  const std::string secret(kQrSecretHexChars, 'c');
  const std::string t = QrToken(0x1234abcdULL, secret);
  EXPECT_EQ(t, "q1" + std::string("000000001234abcd") + secret);
  std::string got;
  EXPECT_EQ(ParseQrToken(t, &got), 0x1234abcdULL);
  EXPECT_EQ(got, secret);
  EXPECT_EQ(ParseQrToken(QrToken(static_cast<uint64_t>(INT64_MAX), secret)), static_cast<uint64_t>(INT64_MAX));
  for (const std::string& bad :
       {std::string(""), t.substr(1), t + "a", "q2" + t.substr(2), "Q1" + t.substr(2), t.substr(0, 49) + "G",
        QrToken(0, secret), QrToken(uint64_t{1} << 63, secret), t.substr(0, 18) + std::string(kQrSecretHexChars, 'C')})
    EXPECT_FALSE(ParseQrToken(bad)) << bad;
}

}  // namespace
}  // namespace chat
