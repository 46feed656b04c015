// group-service against a real PostgreSQL (a fresh database per test), with fakes for the services
// it calls: friends, profiles, chat membership and event fan-out.
#include "group/group_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/pg.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/utf8.h"
#include "group/group_seams.h"
#include "group/group_store.h"
#include "group/migrations.h"
#include "test_env.h"
#include "wait.h"

namespace chat::group {
namespace {

class FakeFriends : public FriendChecker {
 public:
  void Befriend(uint64_t a, uint64_t b) {
    std::lock_guard lk(mu_);
    friends_[a].insert(b);
    friends_[b].insert(a);
  }
  Result<FriendSet> FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) override {
    std::lock_guard lk(mu_);
    if (fail) return Unavailable("account-service down");
    FriendSet out;
    for (uint64_t o : others)
      if (friends_[user_id].count(o)) out.insert(o);
    return out;
  }
  std::atomic<bool> fail{false};

 private:
  std::mutex mu_;
  std::map<uint64_t, std::set<uint64_t>> friends_;
};

// Knows each user's phone like account-service does, and answers with public profiles only, plus the
// viewer's own remarks when asked for a viewer.
class FakeProfiles : public ProfileSource {
 public:
  struct Person {
    std::string handle, display_name, phone;
  };
  void Add(uint64_t id, Person p) {
    std::lock_guard lk(mu_);
    people_[id] = std::move(p);
  }
  void SetRemark(uint64_t viewer, uint64_t id, std::string remark) {
    std::lock_guard lk(mu_);
    remarks_[{viewer, id}] = std::move(remark);
  }
  Status GetProfiles(uint64_t viewer, const std::vector<uint64_t>& ids, std::vector<v1::UserProfile>* out) override {
    std::lock_guard lk(mu_);
    for (uint64_t id : ids) {
      auto it = people_.find(id);
      if (it == people_.end()) continue;
      v1::UserProfile p;
      p.set_user_id(id);
      p.set_handle(it->second.handle);
      p.set_display_name(it->second.display_name);
      if (auto r = remarks_.find({viewer, id}); viewer != 0 && r != remarks_.end()) p.set_remark(r->second);
      out->push_back(p);
    }
    return OkStatus();
  }
  std::vector<std::string> Phones() {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (auto& [id, p] : people_) out.push_back(p.phone);
    return out;
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, Person> people_;
  std::map<std::pair<uint64_t, uint64_t>, std::string> remarks_;  // (viewer, user) -> remark
};

class FakeChat : public ConversationMembership {
 public:
  Status UpdateMembers(const internal::UpdateMembersRequest& r, uint32_t deadline_ms) override {
    EXPECT_GT(deadline_ms, 0u);
    if (during) during(r);  // runs while the push is "in flight"
    ++attempts;
    if (fail) return Unavailable("chat-service down");
    calls_changed_.Update([&] { calls.push_back(r); });
    return OkStatus();
  }
  std::vector<internal::UpdateMembersRequest> Take() {
    std::vector<internal::UpdateMembersRequest> out;
    calls_changed_.Update([&] { out = std::exchange(calls, {}); });
    return out;
  }
  // Waits up to `timeout` for at least one successful call, then takes them all (empty on timeout).
  std::vector<internal::UpdateMembersRequest> WaitAndTake(std::chrono::milliseconds timeout) {
    calls_changed_.WaitFor([&] { return !calls.empty(); }, timeout);
    return Take();
  }
  std::atomic<bool> fail{false};
  std::atomic<int> attempts{0};                                       // every call, failed ones included
  std::function<void(const internal::UpdateMembersRequest&)> during;  // set before the calls it watches

 private:
  chat::testing::Signal calls_changed_;  // guards calls
  std::vector<internal::UpdateMembersRequest> calls;
};

class FakeEvents : public EventPublisher {
 public:
  struct Published {
    std::set<uint64_t> to;
    v1::Event event;
    uint64_t skip_session_id;
  };
  // Delivery "went through" for every published item: outbox items are acknowledged to `acks`.
  OutboxAcks* acks = nullptr;
  void Publish(std::vector<FanoutItem> items) override {
    if (acks) acks->Ack(OutboxIds(items));
    std::lock_guard lk(mu_);
    for (const FanoutItem& i : items)
      published.push_back({{i.user_ids.begin(), i.user_ids.end()}, i.event, i.skip_session_id});
  }
  std::vector<Published> Take() {
    std::lock_guard lk(mu_);
    return std::exchange(published, {});
  }

 private:
  std::mutex mu_;
  std::vector<Published> published;
};

std::set<uint64_t> Set(const google::protobuf::RepeatedField<uint64_t>& f) { return {f.begin(), f.end()}; }

constexpr uint64_t kAlice = 1001, kBob = 1002, kCarol = 1003, kDave = 1004, kEve = 1005;

class GroupServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(0, 1); }
  void TearDown() override {
    if (outbox_) outbox_->Stop();
    service_.reset();
    outbox_.reset();
    pool_.reset();
    if (database_.empty()) return;
    try {  // tidy up; a leftover database is harmless
      auto pg = chat::testing::TestPostgres();
      pqxx::connection c(pg.ConnInfo("postgres"));
      pqxx::nontransaction n(c);
      n.exec("DROP DATABASE IF EXISTS " + c.quote_name(database_));
    } catch (const std::exception&) {
    }
  }

  void Start(uint32_t shard, uint32_t shard_count) {
    if (database_.empty()) {
      database_ = chat::testing::FreshDatabase("group");
      auto pg = chat::testing::TestPostgres();
      ApplyMigrations(pg.ConnInfo(database_), Migrations());
      pool_ = std::make_unique<PgPool>(pg.ConnInfo(database_), 4, PrepareGroupStatements);
      // Rows are due at once, so RelayOnce relays whatever was not acknowledged.
      outbox_ = std::make_unique<Outbox>(pg.ConnInfo(database_),
                                         OutboxOptions{std::chrono::milliseconds(0), std::chrono::milliseconds(20)});
      outbox_->Handle(kOutboxGroupChangeTopic,
                      [this](uint64_t id, const std::string& p) { return service_->RelayChange(id, p); });
      outbox_->Handle(kOutboxGroupSyncTopic,
                      [this](uint64_t id, const std::string& p) { return service_->RelaySync(id, p); });
      events_.acks = outbox_.get();
    }
    GroupServiceDeps deps;
    deps.pool = pool_.get();
    deps.limits = &limits_;
    deps.shard = shard;
    deps.shard_count = shard_count;
    deps.friends = &friends_;
    deps.profiles = &profiles_;
    deps.chat = &chat_;
    deps.events = &events_;
    deps.outbox = outbox_.get();
    deps.now_ms = [this] { return now_ms_.load(); };
    service_ = std::make_unique<GroupServiceImpl>(deps);
    for (auto [id, name] : std::vector<std::pair<uint64_t, std::string>>{
             {kAlice, "Alice"}, {kBob, "Bob"}, {kCarol, "Carol"}, {kDave, "Dave"}, {kEve, "Eve"}})
      profiles_.Add(id, {"h_" + name, name, "+1555000" + std::to_string(id)});
  }

  static internal::Origin Origin(uint64_t user) {
    internal::Origin o;
    o.set_user_id(user);
    o.set_device_id("phone");
    o.set_gateway_id("gw-test");
    o.set_session_id(user * 10);
    return o;
  }

  grpc::Status Create(uint64_t creator, const std::string& name, const std::vector<uint64_t>& members,
                      v1::Group* out = nullptr, const std::string& client_request_id = "") {
    grpc::ServerContext ctx;
    internal::CreateGroupRequest req;
    *req.mutable_origin() = Origin(creator);
    req.mutable_request()->set_name(name);
    req.mutable_request()->set_client_request_id(client_request_id);
    for (uint64_t m : members) req.mutable_request()->add_member_ids(m);
    v1::GroupResult res;
    auto st = service_->CreateGroup(&ctx, &req, &res);
    if (out) *out = res.group();
    return st;
  }
  // Creates a group that must succeed and clears the fakes' records.
  v1::Group MustCreate(uint64_t creator, const std::vector<uint64_t>& members) {
    for (uint64_t m : members) friends_.Befriend(creator, m);
    v1::Group g;
    auto st = Create(creator, "g", members, &g);
    EXPECT_TRUE(st.ok()) << st.error_message();
    chat_.Take();
    events_.Take();
    return g;
  }
  grpc::Status Add(uint64_t actor, uint64_t group_id, const std::vector<uint64_t>& users, v1::Group* out = nullptr) {
    grpc::ServerContext ctx;
    internal::AddGroupMembersRequest req;
    *req.mutable_origin() = Origin(actor);
    req.mutable_request()->set_group_id(group_id);
    for (uint64_t u : users) req.mutable_request()->add_user_ids(u);
    v1::GroupResult res;
    auto st = service_->AddMembers(&ctx, &req, &res);
    if (out) *out = res.group();
    return st;
  }
  grpc::Status Leave(uint64_t user, uint64_t group_id) {
    grpc::ServerContext ctx;
    internal::GroupIdRequest req;
    *req.mutable_origin() = Origin(user);
    req.set_group_id(group_id);
    v1::Empty res;
    return service_->Leave(&ctx, &req, &res);
  }
  grpc::Status List(uint64_t user, uint64_t group_id, v1::GroupMembersResult* out) {
    grpc::ServerContext ctx;
    internal::GroupIdRequest req;
    *req.mutable_origin() = Origin(user);
    req.set_group_id(group_id);
    return service_->ListMembers(&ctx, &req, out);
  }
  std::vector<v1::Group> MyGroups(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::GroupsResult res;
    auto st = service_->ListMyGroups(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {res.groups().begin(), res.groups().end()};
  }
  grpc::Status Manage(uint64_t actor, uint64_t group_id, const std::function<void(v1::ManageGroupRequest&)>& fill,
                      v1::Group* out = nullptr) {
    grpc::ServerContext ctx;
    internal::ManageGroupRequest req;
    *req.mutable_origin() = Origin(actor);
    req.mutable_request()->set_group_id(group_id);
    fill(*req.mutable_request());
    v1::GroupResult res;
    auto st = service_->Manage(&ctx, &req, &res);
    if (out) *out = res.group();
    return st;
  }
  grpc::Status MakeCode(uint64_t user, uint64_t group_id, v1::GroupInviteCode* out) {
    grpc::ServerContext ctx;
    internal::MakeInviteCodeRequest req;
    *req.mutable_origin() = Origin(user);
    req.mutable_request()->set_group_id(group_id);
    return service_->MakeInviteCode(&ctx, &req, out);
  }
  std::string MustMakeCode(uint64_t user, uint64_t group_id) {
    v1::GroupInviteCode code;
    auto st = MakeCode(user, group_id, &code);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return code.code();
  }
  grpc::Status Preview(uint64_t user, const std::string& code, v1::GroupPreview* out) {
    grpc::ServerContext ctx;
    internal::InviteCodeRequest req;
    *req.mutable_origin() = Origin(user);
    req.set_code(code);
    return service_->PreviewInviteCode(&ctx, &req, out);
  }
  grpc::Status Join(uint64_t user, const std::string& code, v1::Group* out = nullptr) {
    grpc::ServerContext ctx;
    internal::InviteCodeRequest req;
    *req.mutable_origin() = Origin(user);
    req.set_code(code);
    v1::GroupResult res;
    auto st = service_->JoinByCode(&ctx, &req, &res);
    if (out) *out = res.group();
    return st;
  }
  grpc::Status Respond(uint64_t user, uint64_t group_id, bool accept) {
    grpc::ServerContext ctx;
    internal::RespondInvitationRequest req;
    *req.mutable_origin() = Origin(user);
    req.mutable_request()->set_group_id(group_id);
    req.mutable_request()->set_accept(accept);
    v1::GroupResult res;
    return service_->RespondInvitation(&ctx, &req, &res);
  }
  std::vector<v1::GroupInvitation> MyInvitations(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::GroupInvitationsResult res;
    EXPECT_TRUE(service_->ListMyInvitations(&ctx, &req, &res).ok());
    return {res.invitations().begin(), res.invitations().end()};
  }
  grpc::Status JoinRequests(uint64_t user, uint64_t group_id, std::vector<v1::GroupInvitation>* out) {
    grpc::ServerContext ctx;
    internal::GroupIdRequest req;
    *req.mutable_origin() = Origin(user);
    req.set_group_id(group_id);
    v1::GroupInvitationsResult res;
    auto st = service_->ListJoinRequests(&ctx, &req, &res);
    out->assign(res.invitations().begin(), res.invitations().end());
    return st;
  }
  grpc::Status Review(uint64_t admin, uint64_t group_id, uint64_t user, bool approve) {
    grpc::ServerContext ctx;
    internal::JoinReviewRequest req;
    *req.mutable_origin() = Origin(admin);
    req.mutable_request()->set_group_id(group_id);
    req.mutable_request()->set_user_id(user);
    req.mutable_request()->set_approve(approve);
    v1::GroupResult res;
    return service_->ReviewJoinRequest(&ctx, &req, &res);
  }
  std::map<uint64_t, v1::GroupRole> Roles(uint64_t viewer, uint64_t group_id) {
    v1::GroupMembersResult res;
    auto st = List(viewer, group_id, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::map<uint64_t, v1::GroupRole> out;
    for (const auto& m : res.members()) out[m.profile().user_id()] = m.role();
    return out;
  }

  Limits limits_;
  std::atomic<int64_t> now_ms_{1'800'000'000'000};
  std::string database_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<Outbox> outbox_;
  FakeFriends friends_;
  FakeProfiles profiles_;
  FakeChat chat_;
  FakeEvents events_;
  std::unique_ptr<GroupServiceImpl> service_;
};

TEST_F(GroupServiceTest, CreateWithFriends) {
  friends_.Befriend(kAlice, kBob);
  friends_.Befriend(kAlice, kCarol);
  v1::Group g;
  auto st = Create(kAlice, "Weekend trip ✈", {kBob, kCarol}, &g);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(g.group_id(), 0u);
  EXPECT_LT(g.group_id(), 1ull << 63);
  EXPECT_EQ(g.conversation_id(), "g." + std::to_string(g.group_id()));
  EXPECT_EQ(g.name(), "Weekend trip ✈");
  EXPECT_EQ(g.owner_id(), kAlice);
  EXPECT_EQ(g.member_count(), 3u);
  EXPECT_GT(g.created_ms(), 0);

  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].conversation_id(), g.conversation_id());
  EXPECT_EQ(calls[0].group_id(), g.group_id());
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kBob, kCarol}));
  EXPECT_EQ(calls[0].remove_user_ids_size(), 0);
  EXPECT_EQ(calls[0].actor_id(), kAlice);
  EXPECT_EQ(calls[0].notice(), "Alice created the group");

  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice, kBob, kCarol}));
  EXPECT_EQ(events[0].skip_session_id, Origin(kAlice).session_id());
  const auto& changed = events[0].event.group_changed();
  EXPECT_EQ(changed.kind(), v1::GROUP_CHANGE_KIND_CREATED);
  EXPECT_EQ(changed.actor_id(), kAlice);
  EXPECT_EQ(changed.group().group_id(), g.group_id());
  EXPECT_EQ(Set(changed.user_ids()), (std::set<uint64_t>{kAlice, kBob, kCarol}));

  EXPECT_EQ(Roles(kBob, g.group_id()),
            (std::map<uint64_t, v1::GroupRole>{
                {kAlice, v1::GROUP_ROLE_OWNER}, {kBob, v1::GROUP_ROLE_MEMBER}, {kCarol, v1::GROUP_ROLE_MEMBER}}));
  for (uint64_t u : {kAlice, kBob, kCarol}) {
    auto mine = MyGroups(u);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].group_id(), g.group_id());
    EXPECT_EQ(mine[0].member_count(), 3u);
  }
  EXPECT_TRUE(MyGroups(kDave).empty());
}

TEST_F(GroupServiceTest, NonFriendMemberIsRejected) {
  friends_.Befriend(kAlice, kBob);
  auto st = Create(kAlice, "g", {kBob, kDave});
  EXPECT_EQ(st.error_code(), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(st.error_message(), "can only add friends to a group");
  EXPECT_TRUE(MyGroups(kAlice).empty());
  EXPECT_TRUE(MyGroups(kBob).empty());
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());

  auto g = MustCreate(kAlice, {kBob});
  st = Add(kAlice, g.group_id(), {kDave});
  EXPECT_EQ(st.error_code(), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(Roles(kAlice, g.group_id()).size(), 2u);
  // Bob is in the group but Carol is Alice's friend, not Bob's: Bob cannot add her.
  friends_.Befriend(kAlice, kCarol);
  EXPECT_EQ(Add(kBob, g.group_id(), {kCarol}).error_code(), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_TRUE(chat_.Take().empty());
}

TEST_F(GroupServiceTest, MemberCapIsEnforced) {
  ASSERT_EQ(limits_.group.max_group_members, 500u);
  limits_.group.invitee_accepts_from_members = 500;  // direct adds all the way to the cap
  std::vector<uint64_t> friends;
  for (uint64_t u = 50000; u < 50000 + 499; ++u) friends.push_back(u);
  v1::Group g = MustCreate(kAlice, friends);
  EXPECT_EQ(g.member_count(), 500u);

  friends_.Befriend(kAlice, kBob);
  v1::Group after;
  auto st = Add(kAlice, g.group_id(), {kBob});
  EXPECT_EQ(st.error_code(), ToGrpc(v1::FAILED_PRECONDITION));
  EXPECT_EQ(st.error_message(), "a group holds at most 500 members");
  EXPECT_EQ(Roles(kAlice, g.group_id()).size(), 500u);
  EXPECT_TRUE(chat_.Take().empty());

  // Creating with 500 others (501 in all) fails before anything is written.
  friends.push_back(kBob);
  st = Create(kAlice, "too big", friends);
  EXPECT_EQ(st.error_code(), ToGrpc(v1::FAILED_PRECONDITION));
  EXPECT_EQ(MyGroups(kAlice).size(), 1u);

  // Room again after someone leaves.
  ASSERT_TRUE(Leave(50000, g.group_id()).ok());
  ASSERT_TRUE(Add(kAlice, g.group_id(), {kBob}, &after).ok());
  EXPECT_EQ(after.member_count(), 500u);
}

TEST_F(GroupServiceTest, ConcurrentAddsCannotOverfillTheGroup) {
  limits_.group.invitee_accepts_from_members = 500;  // direct adds all the way to the cap
  std::vector<uint64_t> friends;
  for (uint64_t u = 60000; u < 60000 + 498; ++u) friends.push_back(u);
  v1::Group g = MustCreate(kAlice, friends);  // 499 members: room for exactly one more
  friends_.Befriend(kAlice, kBob);
  friends_.Befriend(kAlice, kCarol);
  grpc::Status a, b;
  std::thread t1([&] { a = Add(kAlice, g.group_id(), {kBob}); });
  std::thread t2([&] { b = Add(kAlice, g.group_id(), {kCarol}); });
  t1.join();
  t2.join();
  EXPECT_NE(a.ok(), b.ok()) << a.error_message() << " / " << b.error_message();
  EXPECT_EQ((a.ok() ? b : a).error_code(), ToGrpc(v1::FAILED_PRECONDITION));
  EXPECT_EQ(Roles(kAlice, g.group_id()).size(), 500u);
  EXPECT_EQ(MyGroups(kAlice)[0].member_count(), 500u);
}

TEST_F(GroupServiceTest, NonMemberCannotTellTheGroupExists) {
  auto g = MustCreate(kAlice, {kBob});
  friends_.Befriend(kEve, kDave);
  v1::GroupMembersResult members;
  auto listed = List(kEve, g.group_id(), &members);
  EXPECT_EQ(listed.error_code(), ToGrpc(v1::NOT_FOUND));
  EXPECT_EQ(members.members_size(), 0);
  auto added = Add(kEve, g.group_id(), {kDave});
  EXPECT_EQ(added.error_code(), ToGrpc(v1::NOT_FOUND));
  auto left = Leave(kEve, g.group_id());
  EXPECT_EQ(left.error_code(), ToGrpc(v1::NOT_FOUND));

  // Exactly what a group that does not exist answers.
  uint64_t missing = g.group_id() ^ 0x5555;
  auto missing_list = List(kEve, missing, &members);
  EXPECT_EQ(missing_list.error_code(), listed.error_code());
  EXPECT_EQ(missing_list.error_message(), listed.error_message());
  EXPECT_EQ(Add(kEve, missing, {kDave}).error_message(), added.error_message());
  EXPECT_EQ(listed.error_message(), "group not found");
  EXPECT_EQ(Roles(kAlice, g.group_id()).size(), 2u);
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
}

TEST_F(GroupServiceTest, TheOwnerMustTransferOwnershipBeforeLeaving) {
  auto g = MustCreate(kAlice, {kCarol, kBob});
  EXPECT_EQ(Leave(kAlice, g.group_id()).error_code(), ToGrpc(v1::FAILED_PRECONDITION));
  EXPECT_TRUE(chat_.Take().empty()) << "a refused leave changes nothing";
  ASSERT_TRUE(Manage(kAlice, g.group_id(), [](auto& r) { r.set_transfer_owner_to(kCarol); }).ok());
  EXPECT_EQ(Roles(kBob, g.group_id()),
            (std::map<uint64_t, v1::GroupRole>{
                {kAlice, v1::GROUP_ROLE_MEMBER}, {kBob, v1::GROUP_ROLE_MEMBER}, {kCarol, v1::GROUP_ROLE_OWNER}}));
  chat_.Take();
  events_.Take();

  ASSERT_TRUE(Leave(kAlice, g.group_id()).ok());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].add_user_ids_size(), 0);
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kAlice}));
  EXPECT_EQ(calls[0].notice(), "Alice left the group");
  EXPECT_EQ(Set(calls[0].rules().privileged_user_ids()), (std::set<uint64_t>{kCarol}));
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice, kBob, kCarol}));
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBER_LEFT);
  EXPECT_EQ(events[0].event.group_changed().group().owner_id(), kCarol);
  EXPECT_EQ(events[0].event.group_changed().group().member_count(), 2u);

  EXPECT_TRUE(MyGroups(kAlice).empty());
  v1::GroupMembersResult res;
  EXPECT_EQ(List(kAlice, g.group_id(), &res).error_code(), ToGrpc(v1::NOT_FOUND));
  EXPECT_EQ(Leave(kAlice, g.group_id()).error_code(), ToGrpc(v1::NOT_FOUND));
  // Bob leaves; then the owner is the last member and may leave: the group is dissolved.
  ASSERT_TRUE(Leave(kBob, g.group_id()).ok());
  ASSERT_TRUE(Leave(kCarol, g.group_id()).ok());
  EXPECT_TRUE(MyGroups(kCarol).empty());
  EXPECT_EQ(List(kCarol, g.group_id(), &res).error_code(), ToGrpc(v1::NOT_FOUND));
}

TEST_F(GroupServiceTest, MemberListCarriesProfilesAndNeverAPhone) {
  auto g = MustCreate(kAlice, {kBob, kCarol});
  v1::GroupMembersResult res;
  ASSERT_TRUE(List(kCarol, g.group_id(), &res).ok());
  EXPECT_EQ(res.group().group_id(), g.group_id());
  EXPECT_EQ(res.group().member_count(), 3u);
  ASSERT_EQ(res.members_size(), 3);
  EXPECT_EQ(res.members(0).profile().user_id(), kAlice);  // the owner joined first
  std::map<uint64_t, std::pair<std::string, std::string>> seen;
  for (const auto& m : res.members()) {
    seen[m.profile().user_id()] = {m.profile().handle(), m.profile().display_name()};
    EXPECT_GT(m.joined_ms(), 0);
    EXPECT_EQ(m.alias(), "");
  }
  EXPECT_EQ(seen[kAlice], (std::pair<std::string, std::string>{"h_Alice", "Alice"}));
  EXPECT_EQ(seen[kBob], (std::pair<std::string, std::string>{"h_Bob", "Bob"}));
  EXPECT_EQ(seen[kCarol], (std::pair<std::string, std::string>{"h_Carol", "Carol"}));
  std::string wire = res.SerializeAsString() + res.DebugString();
  for (const auto& phone : profiles_.Phones()) {
    EXPECT_EQ(wire.find(phone), std::string::npos) << "phone leaked: " << phone;
    EXPECT_EQ(wire.find(phone.substr(1)), std::string::npos);
  }
}

// Carol calls Bob "Bobby" in her contacts: her member list shows it, Alice's does not.
TEST_F(GroupServiceTest, TheMemberListShowsTheAskersOwnRemarkNamesOnly) {
  profiles_.SetRemark(kCarol, kBob, "Bobby");
  auto g = MustCreate(kAlice, {kBob, kCarol});
  auto remark_of_bob = [&](uint64_t viewer) {
    v1::GroupMembersResult res;
    EXPECT_TRUE(List(viewer, g.group_id(), &res).ok());
    for (const auto& m : res.members())
      if (m.profile().user_id() == kBob) return m.profile().remark() + "|" + m.profile().display_name();
    return std::string("missing");
  };
  EXPECT_EQ(remark_of_bob(kCarol), "Bobby|Bob");
  EXPECT_EQ(remark_of_bob(kAlice), "|Bob");
}

TEST_F(GroupServiceTest, AddIsIdempotentAndTellsChatAndEveryMember) {
  auto g = MustCreate(kAlice, {kBob});
  friends_.Befriend(kAlice, kCarol);
  friends_.Befriend(kAlice, kDave);
  v1::Group after;
  ASSERT_TRUE(Add(kAlice, g.group_id(), {kBob, kCarol, kDave, kCarol}, &after).ok());
  EXPECT_EQ(after.member_count(), 4u);
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kCarol, kDave}));
  EXPECT_EQ(calls[0].remove_user_ids_size(), 0);
  EXPECT_EQ(calls[0].actor_id(), kAlice);
  EXPECT_EQ(calls[0].notice(), "Alice invited Carol, Dave");
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice, kBob, kCarol, kDave}));
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBERS_ADDED);
  EXPECT_EQ(events[0].event.group_changed().actor_id(), kAlice);
  EXPECT_EQ(Set(events[0].event.group_changed().user_ids()), (std::set<uint64_t>{kCarol, kDave}));

  // The same request again changes nothing and tells nobody.
  ASSERT_TRUE(Add(kAlice, g.group_id(), {kCarol, kDave}, &after).ok());
  EXPECT_EQ(after.member_count(), 4u);
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
  EXPECT_EQ(Roles(kDave, g.group_id()).size(), 4u);
}

TEST_F(GroupServiceTest, FailedChatPushIsRedrivenByTheNextOperation) {
  friends_.Befriend(kAlice, kBob);
  friends_.Befriend(kAlice, kCarol);
  chat_.fail = true;
  v1::Group created;
  auto st = Create(kAlice, "g", {kBob}, &created);
  EXPECT_TRUE(st.ok()) << "the group committed: " << st.error_message();
  EXPECT_NE(created.group_id(), 0u);
  EXPECT_TRUE(events_.Take().empty()) << "no CREATED event before chat has the conversation";
  // The group exists; listing it repairs the chat membership.
  chat_.fail = false;
  auto mine = MyGroups(kAlice);
  ASSERT_EQ(mine.size(), 1u);
  uint64_t gid = mine[0].group_id();
  EXPECT_EQ(gid, created.group_id());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kBob}));
  EXPECT_TRUE(MyGroups(kAlice).size() == 1 && chat_.Take().empty());  // nothing pending any more

  // An add whose push fails: the retry of the same request re-drives it.
  chat_.fail = true;
  EXPECT_TRUE(Add(kAlice, gid, {kCarol}).ok()) << "committed, so OK";
  chat_.fail = false;
  ASSERT_TRUE(Add(kAlice, gid, {kCarol}).ok());
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kBob, kCarol}));

  // A leave whose push fails: chat must still learn that Bob left.
  chat_.fail = true;
  EXPECT_TRUE(Leave(kBob, gid).ok()) << "committed, so OK";
  chat_.fail = false;
  ASSERT_TRUE(Leave(kBob, gid).ok());  // a retry while the push is pending completes it
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kBob}));
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kCarol}));
  EXPECT_EQ(Leave(kBob, gid).error_code(), ToGrpc(v1::NOT_FOUND));
  EXPECT_TRUE(chat_.Take().empty());

  // After a failure the next change sends the whole membership, then deltas again.
  chat_.fail = true;
  friends_.Befriend(kAlice, kDave);
  EXPECT_TRUE(Add(kAlice, gid, {kDave}).ok());
  chat_.fail = false;
  ASSERT_TRUE(Leave(kCarol, gid).ok());
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kDave}));
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kCarol}));
  EXPECT_EQ(calls[0].notice(), "Carol left the group");
  friends_.Befriend(kAlice, kEve);
  ASSERT_TRUE(Add(kAlice, gid, {kEve}).ok());
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kEve}));
}

TEST_F(GroupServiceTest, CreateRetriedWithTheSameKeyReturnsTheFirstGroup) {
  friends_.Befriend(kAlice, kBob);
  friends_.Befriend(kAlice, kCarol);
  friends_.Befriend(kDave, kBob);
  v1::Group first, retry;
  ASSERT_TRUE(Create(kAlice, "trip", {kBob}, &first, "req-1").ok());
  EXPECT_EQ(chat_.Take().size(), 1u);
  EXPECT_EQ(events_.Take().size(), 1u);

  // The retry (even if the client changed its mind about the details) gets the same group, and
  // nobody is told twice.
  ASSERT_TRUE(Create(kAlice, "trip (again)", {kBob, kCarol}, &retry, "req-1").ok());
  EXPECT_EQ(retry.group_id(), first.group_id());
  EXPECT_EQ(retry.name(), "trip");
  EXPECT_EQ(retry.member_count(), 2u);
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
  EXPECT_EQ(MyGroups(kAlice).size(), 1u);
  EXPECT_TRUE(MyGroups(kCarol).empty());

  // The key is per creator: Dave's "req-1" is his own group.
  v1::Group daves;
  ASSERT_TRUE(Create(kDave, "d", {kBob}, &daves, "req-1").ok());
  EXPECT_NE(daves.group_id(), first.group_id());
  // A new key is a new group; no key keeps the old behaviour (every call creates one).
  ASSERT_TRUE(Create(kAlice, "trip", {kBob}, nullptr, "req-2").ok());
  ASSERT_TRUE(Create(kAlice, "x", {kBob}).ok());
  ASSERT_TRUE(Create(kAlice, "x", {kBob}).ok());
  EXPECT_EQ(MyGroups(kAlice).size(), 4u);
  EXPECT_EQ(MyGroups(kBob).size(), 5u);

  // Retries racing each other still make one group.
  chat_.Take();
  events_.Take();
  v1::Group a, b;
  grpc::Status sa, sb;
  std::thread t1([&] { sa = Create(kAlice, "race", {kBob}, &a, "req-race"); });
  std::thread t2([&] { sb = Create(kAlice, "race", {kBob}, &b, "req-race"); });
  t1.join();
  t2.join();
  ASSERT_TRUE(sa.ok() && sb.ok()) << sa.error_message() << " / " << sb.error_message();
  EXPECT_EQ(a.group_id(), b.group_id());
  EXPECT_EQ(MyGroups(kAlice).size(), 5u);
  EXPECT_EQ(events_.Take().size(), 1u);
}

TEST_F(GroupServiceTest, ClientRequestIdIsValidated) {
  friends_.Befriend(kAlice, kBob);
  auto invalid = ToGrpc(v1::INVALID_ARGUMENT);
  EXPECT_EQ(Create(kAlice, "g", {kBob}, nullptr, std::string(65, 'k')).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob}, nullptr, "tab\there").error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob}, nullptr, "caf\xc3\xa9").error_code(), invalid);
  EXPECT_TRUE(MyGroups(kAlice).empty());
  EXPECT_TRUE(Create(kAlice, "g", {kBob}, nullptr, std::string(64, 'k')).ok());
  EXPECT_TRUE(Create(kAlice, "g", {kBob}, nullptr, "a b~!").ok());
  EXPECT_EQ(MyGroups(kAlice).size(), 2u);
}

TEST_F(GroupServiceTest, LeaveIsOkWhenChatIsDownAndTheOutboxRelayRemovesTheLeaver) {
  auto g = MustCreate(kAlice, {kBob, kCarol});
  chat_.fail = true;
  ASSERT_TRUE(Leave(kBob, g.group_id()).ok());
  EXPECT_TRUE(events_.Take().empty()) << "nobody is told before chat has the change";
  EXPECT_EQ(outbox_->RelayOnce(), 0u) << "chat still down";

  chat_.fail = false;
  EXPECT_EQ(outbox_->RelayOnce(), 1u);
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kBob}));
  EXPECT_TRUE(calls[0].add_user_ids().empty()) << "the change itself, not a full re-sync";
  EXPECT_EQ(calls[0].notice(), "Bob left the group");
  EXPECT_EQ(calls[0].membership_version(), 2u);  // created at 1, Bob left at 2
  // And now the leave is announced, to the leaver too.
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBER_LEFT);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice, kBob, kCarol}));
  // Nothing is pending any more: the announcement was delivered and acknowledged.
  EXPECT_EQ(outbox_->RelayOnce(), 0u);
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
}

TEST_F(GroupServiceTest, TheRelayRepairsEveryLaggingGroupAndADeadChatCostsAFewCalls) {
  friends_.Befriend(kAlice, kBob);
  chat_.fail = true;
  std::set<uint64_t> created;
  for (int i = 0; i < 5; ++i) {
    v1::Group g;
    ASSERT_TRUE(Create(kAlice, "g", {kBob}, &g).ok());
    created.insert(g.group_id());
  }
  EXPECT_TRUE(events_.Take().empty());
  const int before = chat_.attempts.load();
  EXPECT_EQ(outbox_->RelayOnce(), 0u);
  EXPECT_EQ(chat_.attempts.load() - before, Outbox::kMaxConsecutiveFailures)
      << "a pass stops after a few failures instead of asking a dead chat once per group";
  chat_.fail = false;
  EXPECT_EQ(outbox_->RelayOnce(), 5u);
  std::set<uint64_t> pushed;
  for (const auto& c : chat_.Take()) pushed.insert(c.group_id());
  EXPECT_EQ(pushed, created);
  auto events = events_.Take();
  EXPECT_EQ(events.size(), 5u) << "every creation is announced once chat has it";
  EXPECT_EQ(outbox_->RelayOnce(), 0u);
  EXPECT_TRUE(chat_.Take().empty());
}

TEST_F(GroupServiceTest, GroupsThatLaggedBeforeTheOutboxAreResyncedByTheRelay) {
  // A group whose chat copy lagged when migration 0004 ran has a "group.sync" row; relaying it is a
  // full re-sync (every member added), with no event.
  auto g = MustCreate(kAlice, {kBob});
  {
    pqxx::connection c(chat::testing::TestPostgres().ConnInfo(database_));
    pqxx::work w(c);
    w.exec("UPDATE groups SET chat_synced_version = 0 WHERE id = " + std::to_string(g.group_id()));
    w.exec("INSERT INTO event_outbox (topic, payload, next_relay_at) VALUES ('group.sync', convert_to('" +
           std::to_string(g.group_id()) + "', 'UTF8'), now())");
    w.commit();
  }
  chat_.Take();
  EXPECT_EQ(outbox_->RelayOnce(), 1u);
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kAlice, kBob}));
  EXPECT_TRUE(events_.Take().empty());
  EXPECT_EQ(outbox_->RelayOnce(), 0u) << "a re-sync acknowledges its own row";
}

TEST_F(GroupServiceTest, TheRelayThreadRepairsInTheBackgroundAndStops) {
  auto g = MustCreate(kAlice, {kBob});
  outbox_->Start();
  chat_.fail = true;
  ASSERT_TRUE(Leave(kBob, g.group_id()).ok());
  chat_.fail = false;
  auto calls = chat_.WaitAndTake(std::chrono::seconds(10));
  ASSERT_FALSE(calls.empty()) << "the relay never pushed the leave";
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kBob}));
  auto stop_started = std::chrono::steady_clock::now();
  outbox_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, std::chrono::seconds(2));
}

TEST_F(GroupServiceTest, PushHoldsNoRowLockAndCarriesTheVersion) {
  auto g = MustCreate(kAlice, {kBob});
  friends_.Befriend(kAlice, kCarol);
  std::atomic<int> lock_free_during_push{0};
  auto pg = chat::testing::TestPostgres();
  pqxx::connection other(pg.ConnInfo(database_));
  chat_.during = [&](const internal::UpdateMembersRequest&) {
    // While the push is in flight another transaction can lock the group row at once.
    try {
      pqxx::work w(other);
      w.exec("SELECT 1 FROM groups WHERE id = " + std::to_string(g.group_id()) + " FOR UPDATE NOWAIT");
      w.commit();
      ++lock_free_during_push;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "group row locked during the chat push: " << e.what();
    }
  };
  ASSERT_TRUE(Add(kAlice, g.group_id(), {kCarol}).ok());
  chat_.during = nullptr;
  EXPECT_EQ(lock_free_during_push.load(), 1);
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].membership_version(), 2u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kCarol}));
}

TEST_F(GroupServiceTest, InputValidation) {
  friends_.Befriend(kAlice, kBob);
  auto invalid = ToGrpc(v1::INVALID_ARGUMENT);
  EXPECT_EQ(Create(kAlice, std::string(65, 'a'), {kBob}).error_code(), invalid);
  std::string cjk;
  for (int i = 0; i < 64; ++i) cjk += "群";  // 64 code points, 192 bytes
  EXPECT_TRUE(Create(kAlice, cjk, {kBob}).ok());
  EXPECT_EQ(Create(kAlice, cjk + "群", {kBob}).error_code(), invalid);
  EXPECT_TRUE(Create(kAlice, "", {kBob}).ok());
  EXPECT_EQ(Create(kAlice, "bad\xff", {kBob}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "\xc0\xaf", {kBob}).error_code(), invalid);      // overlong '/'
  EXPECT_EQ(Create(kAlice, "\xed\xa0\x80", {kBob}).error_code(), invalid);  // surrogate
  EXPECT_EQ(Create(kAlice, "\xe7\xbe", {kBob}).error_code(), invalid);      // truncated
  EXPECT_EQ(Create(kAlice, "two\nlines", {kBob}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "bell\x7f", {kBob}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "c1\xc2\x85", {kBob}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob, kBob}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob, kAlice}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob, 0}).error_code(), invalid);
  EXPECT_EQ(Create(0, "g", {kBob}).error_code(), invalid);
  EXPECT_EQ(MyGroups(kAlice).size(), 2u);  // only the two valid ones

  auto g = MyGroups(kAlice)[0];
  EXPECT_EQ(Add(kAlice, g.group_id(), {}).error_code(), invalid);
  EXPECT_EQ(Add(kAlice, 0, {kBob}).error_code(), invalid);
  EXPECT_EQ(Add(kAlice, g.group_id(), {0}).error_code(), invalid);
  // Ids of 2^63 and above name nobody: a clear INVALID_ARGUMENT, never INTERNAL from the database.
  EXPECT_EQ(Add(kAlice, g.group_id(), {uint64_t{1} << 63}).error_code(), invalid);
  EXPECT_EQ(Add(kAlice, g.group_id(), {~uint64_t{0}}).error_code(), invalid);
  EXPECT_EQ(Create(kAlice, "g", {kBob, ~uint64_t{0}}).error_code(), invalid);
  EXPECT_EQ(Add(kAlice, ~uint64_t{0}, {kBob}).error_code(), ToGrpc(v1::NOT_FOUND)) << "no such group";
  EXPECT_EQ(Leave(kAlice, 0).error_code(), invalid);
  v1::GroupMembersResult res;
  EXPECT_EQ(List(kAlice, 0, &res).error_code(), invalid);
  grpc::ServerContext ctx;
  internal::UserIdRequest none;
  v1::GroupsResult groups;
  EXPECT_EQ(service_->ListMyGroups(&ctx, &none, &groups).error_code(), invalid);
}

TEST_F(GroupServiceTest, UnsafeNamesAreRefusedAndNamesAreStoredInNfc) {
  friends_.Befriend(kAlice, kBob);
  for (std::string bad : {std::string("\x1b[2Jfake"), std::string("cr\rname"),
                          std::string("pay\xE2\x80\xAEtxt.exe"),  // U+202E
                          std::string("z\xE2\x80\x8Dw"),          // U+200D
                          std::string("\xEF\xBB\xBF"
                                      "bom"),
                          std::string("tag\xF3\xA0\x80\xA1"), std::string(" \t "),
                          std::string("\xE2\x80\x83\xE2\x80\x83")}) {  // two EM SPACEs
    auto st = Create(kAlice, bad, {kBob});
    EXPECT_EQ(st.error_code(), ToGrpc(v1::INVALID_ARGUMENT)) << EscapeForTerminal(bad);
    EXPECT_EQ(st.error_message().rfind("group name ", 0), 0u) << st.error_message();
  }
  EXPECT_TRUE(MyGroups(kAlice).empty()) << "a refused create stored a group";

  v1::Group g;
  ASSERT_TRUE(Create(kAlice,
                     "Caf"
                     "e\xCC\x81",
                     {kBob}, &g)
                  .ok());  // e + U+0301
  EXPECT_EQ(g.name(), "Caf\xC3\xA9");
  auto mine = MyGroups(kBob);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].name(), "Caf\xC3\xA9") << "the stored name is the NFC form";
}

TEST_F(GroupServiceTest, FailingDependenciesAreUnavailableAndChangeNothing) {
  friends_.Befriend(kAlice, kBob);
  friends_.fail = true;
  EXPECT_EQ(Create(kAlice, "g", {kBob}).error_code(), ToGrpc(v1::UNAVAILABLE));
  friends_.fail = false;
  EXPECT_TRUE(MyGroups(kAlice).empty());
  EXPECT_TRUE(chat_.Take().empty());
}

TEST_F(GroupServiceTest, GroupIdsBelongToThisShard) {
  Start(1, 3);
  std::set<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto g = MustCreate(kAlice, {kBob});
    EXPECT_EQ(ShardOfGroup(g.group_id(), 3), 1u);
    ids.insert(g.group_id());
  }
  EXPECT_EQ(ids.size(), 5u);
  // A group id that maps to another shard is not found here.
  uint64_t foreign = 12345;
  while (ShardOfGroup(foreign, 3) == 1) ++foreign;
  EXPECT_EQ(Add(kAlice, foreign, {kBob}).error_code(), ToGrpc(v1::NOT_FOUND));
}

Status GroupName(std::string name, uint32_t max = 3) { return NormalizeGroupName(&name, max); }

TEST(GroupNameTest, CountsCodePoints) {
  EXPECT_TRUE(GroupName("").ok());
  EXPECT_TRUE(GroupName("äöü").ok());
  EXPECT_FALSE(GroupName("äöüß").ok());
  EXPECT_TRUE(GroupName("😀😀😀").ok());
  EXPECT_FALSE(GroupName("\xf4\x90\x80\x80").ok());  // above U+10FFFF
  EXPECT_FALSE(GroupName(std::string("a\0b", 3)).ok());
  std::string decomposed = "a\xCC\x88o\xCC\x88u\xCC\x88";  // 6 code points, "äöü" after NFC
  ASSERT_TRUE(NormalizeGroupName(&decomposed, 3).ok());
  EXPECT_EQ(decomposed, "äöü");
}

TEST(GroupNameTest, RefusesTheUnsafeTextProbes) {
  for (std::string bad : {std::string("\x1b[31mred"), std::string("a\rb"), std::string("a\nb"),
                          std::string("team\xE2\x80\xAE"),  // U+202E
                          std::string("te\xE2\x80\x8B"
                                      "am"),                                   // U+200B
                          std::string("\xEF\xBB\xBFteam"),                     // BOM
                          std::string("team\xF3\xA0\x80\x81"),                 // U+E0001
                          std::string("   "), std::string("\xE3\x85\xA4")}) {  // blank, HANGUL FILLER
    Status st = GroupName(bad, 64);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.message().rfind("group name ", 0), 0u) << st.message();
  }
}

}  // namespace
}  // namespace chat::group

namespace chat::group {
namespace {

// ---- roles and the owner's and admins' actions (protocol.md 8.45) ----

TEST_F(GroupServiceTest, EachRoleMayDoOnlyItsActionsAndEachActionIsANoticeInOrder) {
  auto g = MustCreate(kAlice, {kBob, kCarol, kDave});
  const uint64_t gid = g.group_id();
  auto code = [](const grpc::Status& s) { return s.error_code(); };
  // A member may do none of it.
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.set_rename("Bob's"); })), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.mutable_remove_members()->add_user_ids(kCarol); })),
            ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.set_mute_all(true); })), ToGrpc(v1::PERMISSION_DENIED));
  // A non-member learns nothing, not even that the group exists.
  EXPECT_EQ(code(Manage(kEve, gid, [](auto& r) { r.set_rename("x"); })), ToGrpc(v1::NOT_FOUND));
  EXPECT_TRUE(chat_.Take().empty());

  // The owner appoints Bob; an admin renames, mutes and removes members...
  ASSERT_TRUE(Manage(kAlice, gid, [](auto& r) {
                r.mutable_set_admin()->set_user_id(kBob);
                r.mutable_set_admin()->set_on(true);
              }).ok());
  v1::Group after;
  ASSERT_TRUE(Manage(
                  kBob, gid, [](auto& r) { r.set_rename("Climbing"); }, &after)
                  .ok());
  EXPECT_EQ(after.name(), "Climbing");
  ASSERT_TRUE(Manage(kBob, gid, [](auto& r) {
                r.mutable_mute_member()->set_user_id(kCarol);
                r.mutable_mute_member()->set_on(true);
              }).ok());
  ASSERT_TRUE(Manage(kBob, gid, [](auto& r) { r.mutable_remove_members()->add_user_ids(kDave); }).ok());
  // ...but none of the owner's.
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.mutable_remove_members()->add_user_ids(kAlice); })),
            ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.set_transfer_owner_to(kCarol); })), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.set_invite_confirmation(true); })), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid, [](auto& r) { r.set_dissolve(true); })), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(code(Manage(kBob, gid,
                        [](auto& r) {
                          r.mutable_set_admin()->set_user_id(kCarol);
                          r.mutable_set_admin()->set_on(true);
                        })),
            ToGrpc(v1::PERMISSION_DENIED));
  // The owner and admins cannot be muted.
  EXPECT_EQ(code(Manage(kAlice, gid,
                        [](auto& r) {
                          r.mutable_mute_member()->set_user_id(kBob);
                          r.mutable_mute_member()->set_on(true);
                        })),
            ToGrpc(v1::FAILED_PRECONDITION));
  // Bad requests.
  EXPECT_EQ(code(Manage(kAlice, gid, [](auto&) {})), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(code(Manage(kAlice, gid, [](auto& r) { r.set_transfer_owner_to(kAlice); })), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(code(Manage(kAlice, gid, [](auto& r) { r.set_transfer_owner_to(kEve); })), ToGrpc(v1::INVALID_ARGUMENT))
      << "not a member";
  EXPECT_EQ(code(Manage(kAlice, gid, [](auto& r) { r.set_rename(std::string(65, 'x')); })),
            ToGrpc(v1::INVALID_ARGUMENT));

  // Every action that changed something is one versioned push with its notice, in order.
  auto calls = chat_.Take();
  std::vector<std::string> notices;
  uint64_t last_version = 0;
  for (const auto& c : calls) {
    notices.push_back(c.notice());
    EXPECT_GT(c.membership_version(), last_version);
    last_version = c.membership_version();
    EXPECT_TRUE(c.has_rules());
  }
  EXPECT_EQ(notices, (std::vector<std::string>{"Alice made Bob an admin", "Bob renamed the group to \"Climbing\"",
                                               "Bob muted Carol", "Bob removed Dave"}));
  EXPECT_EQ(Set(calls.back().remove_user_ids()), (std::set<uint64_t>{kDave}));
  EXPECT_EQ(Set(calls.back().rules().privileged_user_ids()), (std::set<uint64_t>{kAlice, kBob}));
  EXPECT_EQ(Set(calls.back().rules().silenced_user_ids()), (std::set<uint64_t>{kCarol}));
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_ADMIN_ADDED);
  EXPECT_EQ(events[1].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_RENAMED);
  EXPECT_EQ(events[2].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBER_MUTED);
  EXPECT_EQ(events[3].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBER_REMOVED);
  EXPECT_EQ(events[3].to, (std::set<uint64_t>{kAlice, kBob, kCarol, kDave})) << "the removed member is told too";

  // Repeats change nothing and tell nobody.
  ASSERT_TRUE(Manage(kBob, gid, [](auto& r) { r.set_rename("Climbing"); }).ok());
  ASSERT_TRUE(Manage(kBob, gid, [](auto& r) { r.mutable_remove_members()->add_user_ids(kDave); }).ok());
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
  v1::GroupMembersResult res;
  ASSERT_TRUE(List(kCarol, gid, &res).ok());
  for (const auto& m : res.members()) EXPECT_EQ(m.muted(), m.profile().user_id() == kCarol);
  EXPECT_EQ(List(kDave, gid, &res).error_code(), ToGrpc(v1::NOT_FOUND)) << "removed";
}

TEST_F(GroupServiceTest, MutingTheWholeGroupSilencesEveryoneButTheOwnerAndAdmins) {
  auto g = MustCreate(kAlice, {kBob, kCarol});
  const uint64_t gid = g.group_id();
  ASSERT_TRUE(Manage(kAlice, gid, [](auto& r) { r.set_mute_all(true); }).ok());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].rules().silenced_user_ids()), (std::set<uint64_t>{kBob, kCarol}));
  // An admin appointed now may speak; a member added now may not.
  ASSERT_TRUE(Manage(kAlice, gid, [](auto& r) {
                r.mutable_set_admin()->set_user_id(kBob);
                r.mutable_set_admin()->set_on(true);
              }).ok());
  friends_.Befriend(kAlice, kDave);
  ASSERT_TRUE(Add(kAlice, gid, {kDave}).ok());
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(Set(calls[1].rules().silenced_user_ids()), (std::set<uint64_t>{kCarol, kDave}));
  EXPECT_EQ(Set(calls[1].rules().privileged_user_ids()), (std::set<uint64_t>{kAlice, kBob}));
  v1::Group after;
  ASSERT_TRUE(Manage(
                  kBob, gid, [](auto& r) { r.set_mute_all(false); }, &after)
                  .ok());
  EXPECT_FALSE(after.all_muted());
  calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].rules().silenced_user_ids_size(), 0);
  EXPECT_EQ(calls[0].notice(), "Bob unmuted the group");
}

TEST_F(GroupServiceTest, DissolvingEndsTheGroupForEveryone) {
  auto g = MustCreate(kAlice, {kBob, kCarol});
  ASSERT_TRUE(Manage(kAlice, g.group_id(), [](auto& r) { r.set_dissolve(true); }).ok());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].remove_user_ids()), (std::set<uint64_t>{kAlice, kBob, kCarol}));
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_DISSOLVED);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice, kBob, kCarol}));
  for (uint64_t u : {kAlice, kBob, kCarol}) EXPECT_TRUE(MyGroups(u).empty());
  v1::GroupMembersResult res;
  EXPECT_EQ(List(kBob, g.group_id(), &res).error_code(), ToGrpc(v1::NOT_FOUND));
}

// Concurrent appointments never make more than max_group_admins admins; concurrent transfers never
// make two owners (the group row lock serializes them).
TEST_F(GroupServiceTest, NeverMoreThanThreeAdminsOrTwoOwnersUnderRaces) {
  std::vector<uint64_t> members;
  for (uint64_t u = 2001; u < 2009; ++u) members.push_back(u);
  auto g = MustCreate(kAlice, members);
  const uint64_t gid = g.group_id();
  for (int round = 0; round < 2; ++round) {
    std::atomic<int> ok{0}, full{0};
    std::vector<std::thread> threads;
    for (uint64_t u : members)
      threads.emplace_back([&, u] {
        auto st = Manage(kAlice, gid, [u](auto& r) {
          r.mutable_set_admin()->set_user_id(u);
          r.mutable_set_admin()->set_on(true);
        });
        (st.ok() ? ok : full)++;
        if (!st.ok()) {
          EXPECT_EQ(st.error_code(), ToGrpc(v1::FAILED_PRECONDITION)) << st.error_message();
        }
      });
    for (auto& t : threads) t.join();
    int admins = 0;
    for (auto [id, role] : Roles(kAlice, gid)) admins += role == v1::GROUP_ROLE_ADMIN;
    EXPECT_EQ(admins, 3);
    if (round == 0) {
      EXPECT_EQ(ok.load(), 3);
    }
  }
  std::atomic<int> transferred{0};
  std::vector<std::thread> threads;
  for (uint64_t u : members)
    threads.emplace_back([&, u] {
      if (Manage(kAlice, gid, [u](auto& r) { r.set_transfer_owner_to(u); }).ok()) ++transferred;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(transferred.load(), 1);
  int owners = 0;
  for (auto [id, role] : Roles(kAlice, gid)) owners += role == v1::GROUP_ROLE_OWNER;
  EXPECT_EQ(owners, 1);
}

// ---- invite codes (protocol.md 8.46-8.48) ----

TEST_F(GroupServiceTest, AnInviteCodeAdmitsStrangersAndShowsNoIdsOrHandles) {
  auto g = MustCreate(kAlice, {kBob});
  ASSERT_TRUE(Manage(kAlice, g.group_id(), [](auto& r) { r.set_rename("Climbing"); }).ok());
  v1::GroupInviteCode made;
  ASSERT_TRUE(MakeCode(kBob, g.group_id(), &made).ok());
  EXPECT_EQ(made.expires_ms(), now_ms_.load() + int64_t{limits_.group.invite_code_ttl_s} * 1000);
  EXPECT_EQ(made.code().find(std::to_string(g.group_id())), std::string::npos);
  EXPECT_EQ(ShardOfGroup(*ParseGroupInviteToken(made.code()), 1), 0u);
  chat_.Take();
  events_.Take();

  v1::GroupPreview preview;
  ASSERT_TRUE(Preview(kEve, made.code(), &preview).ok());
  EXPECT_EQ(preview.name(), "Climbing");
  EXPECT_EQ(preview.member_count(), 2u);
  EXPECT_EQ(std::vector<std::string>(preview.member_names().begin(), preview.member_names().end()),
            (std::vector<std::string>{"Alice", "Bob"}));
  const std::string wire = preview.SerializeAsString() + preview.DebugString();
  for (const char* hidden : {"h_Alice", "h_Bob", "1001", "1002"}) EXPECT_EQ(wire.find(hidden), std::string::npos);

  // Eve is nobody's friend here and joins; the event says whose code.
  v1::Group joined;
  ASSERT_TRUE(Join(kEve, made.code(), &joined).ok());
  EXPECT_EQ(joined.member_count(), 3u);
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kEve}));
  EXPECT_EQ(calls[0].notice(), "Eve joined the group with Bob's invite code");
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBER_JOINED);
  EXPECT_EQ(events[0].event.group_changed().invited_by(), kBob);
  EXPECT_TRUE(events[0].event.group_changed().by_code());
  ASSERT_TRUE(Join(kEve, made.code()).ok()) << "a retry by a member is OK";
  EXPECT_TRUE(chat_.Take().empty());
}

TEST_F(GroupServiceTest, ACodeThatAdmitsNobodyLooksLikeAWrongOne) {
  auto g = MustCreate(kAlice, {kBob, kCarol});
  const std::string by_bob = MustMakeCode(kBob, g.group_id());
  const std::string by_alice = MustMakeCode(kAlice, g.group_id());
  now_ms_ += 3LL * 24 * 3600 * 1000;
  const std::string later = MustMakeCode(kAlice, g.group_id());  // a new code: a new 7 days
  ASSERT_TRUE(Leave(kBob, g.group_id()).ok());
  v1::GroupPreview p;
  std::string wrong = later;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  std::vector<std::pair<std::string, std::string>> dead = {
      {"made by a member who left", by_bob}, {"wrong", wrong}, {"malformed", "g1xyz"}, {"empty", ""}};
  for (const auto& [what, c] : dead) {
    auto st = Preview(kEve, c, &p);
    EXPECT_EQ(st.error_code(), ToGrpc(v1::NOT_FOUND)) << what;
    EXPECT_EQ(st.error_message(), kInvalidInviteCode) << what;
    st = Join(kEve, c);
    EXPECT_EQ(st.error_code(), ToGrpc(v1::NOT_FOUND)) << what;
    EXPECT_EQ(st.error_message(), kInvalidInviteCode) << what;
  }
  ASSERT_TRUE(Preview(kEve, by_alice, &p).ok());
  // 7 days after the first codes: they expire, the later one still admits.
  now_ms_ += 4LL * 24 * 3600 * 1000;
  auto st = Join(kEve, by_alice);
  EXPECT_EQ(st.error_message(), kInvalidInviteCode) << "expired";
  ASSERT_TRUE(Join(kEve, later).ok());
}

TEST_F(GroupServiceTest, CodesAdmitNobodyAtTheirSizeLimitOrInConfirmationMode) {
  limits_.group.invite_code_max_members = 3;
  auto g = MustCreate(kAlice, {kBob});
  const std::string code = MustMakeCode(kAlice, g.group_id());
  ASSERT_TRUE(Manage(kAlice, g.group_id(), [](auto& r) { r.set_invite_confirmation(true); }).ok());
  v1::Group joined;
  ASSERT_TRUE(Join(kEve, code, &joined).ok());
  EXPECT_EQ(joined.group_id(), 0u) << "waits for approval: admitted nobody";
  EXPECT_EQ(Roles(kAlice, g.group_id()).count(kEve), 0u);
  ASSERT_TRUE(Manage(kAlice, g.group_id(), [](auto& r) { r.set_invite_confirmation(false); }).ok());
  ASSERT_TRUE(Join(kEve, code).ok());  // 2 -> 3
  std::vector<v1::GroupInvitation> queue;
  ASSERT_TRUE(JoinRequests(kAlice, g.group_id(), &queue).ok());
  EXPECT_TRUE(queue.empty()) << "who joined waits for nothing";
  EXPECT_EQ(Join(kDave, code).error_code(), ToGrpc(v1::FAILED_PRECONDITION)) << "3 members: invitations only";
  v1::GroupInviteCode c;
  EXPECT_EQ(MakeCode(kAlice, g.group_id(), &c).error_code(), ToGrpc(v1::FAILED_PRECONDITION));
  EXPECT_EQ(MakeCode(kDave, g.group_id(), &c).error_code(), ToGrpc(v1::NOT_FOUND)) << "not a member";
}

// ---- invitations and approvals (protocol.md 8.49-8.52) ----

TEST_F(GroupServiceTest, FromTheAcceptSizeOnInviteesMustAcceptAndTheGroupSeesThemOnlyThen) {
  limits_.group.invitee_accepts_from_members = 3;
  auto g = MustCreate(kAlice, {kBob, kCarol});
  const uint64_t gid = g.group_id();
  friends_.Befriend(kAlice, kDave);
  friends_.Befriend(kAlice, kEve);
  grpc::ServerContext ctx;
  internal::AddGroupMembersRequest add;
  *add.mutable_origin() = Origin(kAlice);
  add.mutable_request()->set_group_id(gid);
  add.mutable_request()->add_user_ids(kDave);
  add.mutable_request()->add_user_ids(kEve);
  v1::GroupResult added;
  ASSERT_TRUE(service_->AddMembers(&ctx, &add, &added).ok());
  EXPECT_EQ(Set(added.invited_user_ids()), (std::set<uint64_t>{kDave, kEve}));
  EXPECT_EQ(added.group().member_count(), 3u) << "nobody joined yet";
  EXPECT_TRUE(chat_.Take().empty()) << "the group's conversation does not hear of invitations";
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kDave}));
  EXPECT_EQ(events[0].event.group_invitation().invitation().inviter_id(), kAlice);
  EXPECT_FALSE(events[0].event.group_invitation().needs_approval());
  auto mine = MyInvitations(kDave);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].group_id(), gid);
  EXPECT_EQ(mine[0].member_count(), 3u);
  EXPECT_EQ(mine[0].expires_ms(), now_ms_.load() + int64_t{limits_.group.group_invitation_ttl_s} * 1000);
  EXPECT_EQ(Roles(kAlice, gid).count(kDave), 0u);

  ASSERT_TRUE(Respond(kDave, gid, true).ok());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Set(calls[0].add_user_ids()), (std::set<uint64_t>{kDave}));
  EXPECT_EQ(calls[0].notice(), "Dave joined the group, invited by Alice");
  events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.group_changed().kind(), v1::GROUP_CHANGE_KIND_MEMBERS_ADDED);
  EXPECT_EQ(events[0].event.group_changed().invited_by(), kAlice);
  EXPECT_EQ(Respond(kDave, gid, true).error_code(), ToGrpc(v1::NOT_FOUND)) << "used";
  EXPECT_TRUE(MyInvitations(kDave).empty());
  // Eve declines: nothing changes and nobody is told.
  ASSERT_TRUE(Respond(kEve, gid, false).ok());
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_TRUE(events_.Take().empty());
  EXPECT_EQ(Respond(kEve, gid, true).error_code(), ToGrpc(v1::NOT_FOUND));
  // An invitation lapses after group_invitation_ttl_s.
  ASSERT_TRUE(Add(kAlice, gid, {kEve}).ok());
  now_ms_ += int64_t{limits_.group.group_invitation_ttl_s} * 1000;
  EXPECT_TRUE(MyInvitations(kEve).empty());
  EXPECT_EQ(Respond(kEve, gid, true).error_code(), ToGrpc(v1::NOT_FOUND));
  EXPECT_EQ(Respond(kCarol, gid + 1, true).error_code(), ToGrpc(v1::NOT_FOUND));
}

TEST_F(GroupServiceTest, ConfirmationModeQueuesMembersInvitationsAndCodeJoinsForApproval) {
  auto g = MustCreate(kAlice, {kBob});
  const uint64_t gid = g.group_id();
  const std::string code = MustMakeCode(kBob, gid);
  ASSERT_TRUE(Manage(kAlice, gid, [](auto& r) { r.set_invite_confirmation(true); }).ok());
  chat_.Take();
  events_.Take();
  // A member's invitation waits for approval; the owner's does not.
  friends_.Befriend(kBob, kDave);
  grpc::ServerContext ctx;
  internal::AddGroupMembersRequest add;
  *add.mutable_origin() = Origin(kBob);
  add.mutable_request()->set_group_id(gid);
  add.mutable_request()->add_user_ids(kDave);
  v1::GroupResult res;
  ASSERT_TRUE(service_->AddMembers(&ctx, &add, &res).ok());
  EXPECT_EQ(Set(res.pending_approval_user_ids()), (std::set<uint64_t>{kDave}));
  auto events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, (std::set<uint64_t>{kAlice})) << "the owner and admins";
  EXPECT_TRUE(events[0].event.group_invitation().needs_approval());
  friends_.Befriend(kAlice, kCarol);
  ASSERT_TRUE(Add(kAlice, gid, {kCarol}).ok());
  EXPECT_EQ(Roles(kAlice, gid).count(kCarol), 1u) << "an owner's invitation needs no approval";
  // A code join waits too, and the joiner learns nothing about the group.
  v1::Group joined;
  ASSERT_TRUE(Join(kEve, code, &joined).ok());
  EXPECT_EQ(joined.group_id(), 0u);
  std::vector<v1::GroupInvitation> queue;
  EXPECT_EQ(JoinRequests(kBob, gid, &queue).error_code(), ToGrpc(v1::PERMISSION_DENIED));
  EXPECT_EQ(JoinRequests(kEve, gid, &queue).error_code(), ToGrpc(v1::NOT_FOUND));
  ASSERT_TRUE(JoinRequests(kAlice, gid, &queue).ok());
  ASSERT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue[0].user_id(), kDave);
  EXPECT_EQ(queue[0].inviter_id(), kBob);
  EXPECT_EQ(queue[1].user_id(), kEve);
  EXPECT_TRUE(queue[1].by_code());
  chat_.Take();
  events_.Take();

  EXPECT_EQ(Review(kBob, gid, kDave, true).error_code(), ToGrpc(v1::PERMISSION_DENIED));
  ASSERT_TRUE(Review(kAlice, gid, kDave, true).ok());
  auto calls = chat_.Take();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].notice(), "Alice approved Dave joining the group");
  events = events_.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.group_changed().invited_by(), kBob);
  ASSERT_TRUE(Review(kAlice, gid, kEve, false).ok());
  EXPECT_TRUE(chat_.Take().empty());
  EXPECT_EQ(Roles(kAlice, gid).count(kEve), 0u);
  EXPECT_EQ(Review(kAlice, gid, kEve, true).error_code(), ToGrpc(v1::NOT_FOUND)) << "already reviewed";
  ASSERT_TRUE(JoinRequests(kAlice, gid, &queue).ok());
  EXPECT_TRUE(queue.empty());
}

// 50 concurrent joins at a group one short of a limit: exactly one gets in, the rest get the
// documented FAILED_PRECONDITION. At 499 of 500 (codes allowed at that size for the test) half come by
// code and half accept an invitation they were sent before; at 99 they come by code (the code rule:
// codes admit below 100).
TEST_F(GroupServiceTest, FiftyConcurrentJoinsAtTheLastPlaceAdmitExactlyOne) {
  for (const uint32_t size : {499u, 99u}) {
    const bool cap_race = size == 499;
    limits_.group.invite_code_max_members = cap_race ? 1000 : 100;
    std::vector<uint64_t> members;
    const uint64_t base = cap_race ? 10000 : 20000;
    for (uint64_t i = 0; i + 1 < size; ++i) members.push_back(base + i);
    auto g = MustCreate(kAlice, members);
    ASSERT_EQ(g.member_count(), size);
    const std::string code = MustMakeCode(kAlice, g.group_id());
    std::vector<uint64_t> invitees;
    for (uint64_t i = 0; i < 50; ++i)
      if (cap_race && i % 2 == 1) {
        invitees.push_back(base + 5000 + i);
        friends_.Befriend(kAlice, base + 5000 + i);
      }
    if (!invitees.empty()) ASSERT_TRUE(Add(kAlice, g.group_id(), invitees).ok());
    ASSERT_EQ(MyInvitations(invitees.empty() ? kAlice : invitees[0]).size(), invitees.empty() ? 0u : 1u);
    std::atomic<int> in{0}, refused{0};
    std::vector<std::thread> threads;
    for (uint64_t i = 0; i < 50; ++i) {
      const uint64_t joiner = base + 5000 + i;
      const bool by_invitation = cap_race && i % 2 == 1;
      threads.emplace_back([&, joiner, by_invitation] {
        auto st = by_invitation ? Respond(joiner, g.group_id(), true) : Join(joiner, code);
        if (st.ok()) {
          ++in;
        } else {
          ++refused;
          EXPECT_EQ(st.error_code(), ToGrpc(v1::FAILED_PRECONDITION)) << st.error_message();
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(in.load(), 1) << "at " << size;
    EXPECT_EQ(refused.load(), 49);
    v1::GroupMembersResult res;
    ASSERT_TRUE(List(kAlice, g.group_id(), &res).ok());
    EXPECT_EQ(res.members_size(), static_cast<int>(size) + 1);
    EXPECT_EQ(res.group().member_count(), size + 1);
  }
}

}  // namespace
}  // namespace chat::group
