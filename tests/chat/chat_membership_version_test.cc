// PgChatStore::UpdateMembers with UpdateMembersRequest.membership_version, over a real PostgreSQL
// (FreshDatabase per test): a delayed older push must never undo a newer membership change.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "chat_service/chat_store.h"
#include "chat_service/migrations.h"
#include "common/pg.h"
#include "common/shard.h"
#include "test_env.h"

namespace chat::chat_service {
namespace {

constexpr uint64_t kAlice = 1001, kBob = 1002, kUma = 1003;
constexpr uint64_t kGroup = 4242;

class MembershipVersionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = chat::testing::TestPostgres();
    database_ = chat::testing::FreshDatabase("chatver");
    ApplyMigrations(pg.ConnInfo(database_), Migrations());
    pool_ = std::make_unique<PgPool>(pg.ConnInfo(database_), 2, &PgChatStore::Prepare);
    store_ = std::make_unique<PgChatStore>(*pool_);
  }
  void TearDown() override {
    store_.reset();
    pool_.reset();
    try {  // tidy up; a leftover database is harmless
      auto pg = chat::testing::TestPostgres();
      pqxx::connection c(pg.ConnInfo("postgres"));
      pqxx::nontransaction n(c);
      n.exec("DROP DATABASE IF EXISTS " + c.quote_name(database_));
    } catch (const std::exception&) {
    }
  }

  struct Applied {
    Status status;
    uint64_t seq = 0;
    size_t notices = 0;  // messages handed to on_commit
  };
  Applied Update(uint64_t version, const std::vector<uint64_t>& add, const std::vector<uint64_t>& remove,
                 const std::string& notice) {
    internal::UpdateMembersRequest req;
    req.set_conversation_id(GroupConversationId(kGroup));
    req.set_group_id(kGroup);
    for (uint64_t u : add) req.add_add_user_ids(u);
    for (uint64_t u : remove) req.add_remove_user_ids(u);
    req.set_actor_id(kAlice);
    req.set_notice(notice);
    req.set_membership_version(version);
    Applied a;
    a.status = store_->UpdateMembers(req, &a.seq, [&](std::vector<CommittedMessage>&& m) { a.notices += m.size(); });
    return a;
  }
  // user -> is a current member (absent: never was a member).
  std::map<uint64_t, bool> Members(uint64_t* members_version = nullptr) {
    std::vector<std::pair<std::string, GroupMembers>> out;
    auto st = store_->LoadGroupMembers({GroupConversationId(kGroup)}, &out);
    EXPECT_TRUE(st.ok()) << st.message();
    std::map<uint64_t, bool> m;
    if (out.empty()) return m;
    if (members_version) *members_version = out[0].second.members_version;
    for (const auto& w : out[0].second.members) m[w.user_id] = w.left_seq == UINT64_MAX;
    return m;
  }

  std::string database_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<PgChatStore> store_;
};

TEST_F(MembershipVersionTest, DelayedOlderAddDoesNotUndoANewerRemove) {
  auto created = Update(4, {kAlice, kBob}, {}, "Alice created the group");
  ASSERT_TRUE(created.status.ok()) << created.status.message();
  EXPECT_EQ(created.notices, 1u);

  // v6 "Uma left" arrives before the delayed v5 "Alice invited Uma".
  auto removed = Update(6, {}, {kUma}, "Uma left the group");
  ASSERT_TRUE(removed.status.ok());
  auto stale = Update(5, {kUma}, {}, "Alice invited Uma");
  ASSERT_TRUE(stale.status.ok()) << stale.status.message();
  EXPECT_EQ(stale.notices, 0u) << "a stale push posts no notice";
  EXPECT_EQ(stale.seq, removed.seq) << "a stale push answers with the current seq";
  auto members = Members();
  EXPECT_EQ(members.count(kUma), 0u) << "Uma must not be (re-)added by the older push";
  EXPECT_TRUE(members[kAlice]);
  EXPECT_TRUE(members[kBob]);

  // The normal order: add at v7, remove at v8, then a late copy of v7 again.
  ASSERT_TRUE(Update(7, {kUma}, {}, "Alice invited Uma").status.ok());
  EXPECT_TRUE(Members()[kUma]);
  auto left = Update(8, {}, {kUma}, "Uma left the group");
  ASSERT_TRUE(left.status.ok());
  EXPECT_EQ(left.notices, 1u);
  auto late = Update(7, {kUma}, {}, "Alice invited Uma");
  ASSERT_TRUE(late.status.ok());
  EXPECT_EQ(late.notices, 0u);
  EXPECT_FALSE(Members()[kUma]) << "Uma stays removed";
}

TEST_F(MembershipVersionTest, FullResyncAtTheSameVersionIsANoOp) {
  auto first = Update(3, {kAlice, kBob, kUma}, {}, "Alice created the group");
  ASSERT_TRUE(first.status.ok());
  uint64_t mv_before = 0;
  auto before = Members(&mv_before);

  // The same full membership again (group-service re-drives after losing the reply).
  auto again = Update(3, {kAlice, kBob, kUma}, {}, "Alice created the group");
  ASSERT_TRUE(again.status.ok()) << again.status.message();
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(again.notices, 0u);
  uint64_t mv_after = 0;
  EXPECT_EQ(Members(&mv_after), before);
  EXPECT_EQ(mv_after, mv_before) << "nothing changed, so member caches stay valid";

  // A full re-sync at the same version that (wrongly) differs is still ignored: versions are the truth.
  auto differing = Update(3, {kAlice}, {kBob}, "");
  ASSERT_TRUE(differing.status.ok());
  EXPECT_TRUE(Members()[kBob]);
}

TEST_F(MembershipVersionTest, UnversionedUpdatesApplyAndKeepTheStoredVersion) {
  ASSERT_TRUE(Update(5, {kAlice, kBob}, {}, "").status.ok());
  // Version 0 = unversioned: applied unconditionally.
  auto plain = Update(0, {kUma}, {}, "Uma joined");
  ASSERT_TRUE(plain.status.ok());
  EXPECT_EQ(plain.notices, 1u);
  EXPECT_TRUE(Members()[kUma]);
  // ... and it did not reset the stored version: v5 is still stale, v6 applies.
  ASSERT_TRUE(Update(5, {}, {kUma}, "").status.ok());
  EXPECT_TRUE(Members()[kUma]);
  ASSERT_TRUE(Update(6, {}, {kUma}, "").status.ok());
  EXPECT_FALSE(Members()[kUma]);
}

}  // namespace
}  // namespace chat::chat_service
