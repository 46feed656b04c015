// Two account shards in-process, each behind a real gRPC server, talking to each other: profiles
// and friend edges that cross shards.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "account_test_util.h"
#include "common/grpc_util.h"
#include "common/shard.h"
#include "test_env.h"

namespace chat::account {
namespace {

using testing::BaseConfig;
using testing::NewestCode;
using testing::Shard;
using testing::TempDir;

// A phone number that ShardOfPhone routes to `shard` of 2, distinct per `n`.
std::string PhoneOnShard(uint32_t shard, int n) {
  for (int i = 0;; ++i) {
    std::string phone = "+86139" + std::to_string(10000000 + n * 1000 + i);
    if (ShardOfPhone(phone, 2) == shard) return phone;
  }
}

class AccountMultiShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ms_ = NowMs();
    config_ = BaseConfig(run_dir_.path());
    config_.limits.common.rpc_deadline_ms = 2000;
    // Each shard's port is held from here to the end of the test, so the in-process servers (and the
    // restarted one) bind it with no window in which another socket could take it.
    for (int s = 0; s < 2; ++s) {
      ports_.emplace_back(chat::testing::ReservedPort::Use::kForListener);
      config_.account.push_back(ShardConfig{{ports_.back().address()}, testing::NewAccountDatabase()});
    }
    for (uint32_t s = 0; s < 2; ++s) {
      shards_.push_back(std::make_unique<Shard>(config_, s, now_ms_, config_.run_dir));
      servers_.push_back(StartServer(config_.account[s].addresses[0], {&shards_[s]->service}, config_.internal_tls));
    }
  }
  void TearDown() override {
    for (auto& s : servers_)
      if (s) s->Shutdown(std::chrono::system_clock::now());
    servers_.clear();
    shards_.clear();
    for (const auto& a : config_.account) testing::DropDatabase(a.database);
  }
  AccountServiceImpl& On(uint32_t shard) { return shards_.at(shard)->service; }

  v1::UserProfile NewUser(uint32_t shard, int n, const std::string& name) {
    const std::string phone = PhoneOnShard(shard, n);
    grpc::ServerContext ctx;
    v1::RequestCodeRequest rreq;
    rreq.set_phone(phone);
    v1::RequestCodeResult rres;
    EXPECT_TRUE(On(shard).RequestCode(&ctx, &rreq, &rres).ok());
    v1::SignUpRequest req;
    req.set_phone(phone);
    req.set_code(NewestCode(config_.run_dir, phone));
    req.set_display_name(name);
    req.set_device_id("d1");
    v1::SessionResult res;
    auto st = On(shard).SignUp(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(ShardOfUser(res.account().profile().user_id(), 2), shard);
    return res.account().profile();
  }
  grpc::Status SendRequest(uint64_t from, uint64_t to) {
    grpc::ServerContext ctx;
    internal::SendFriendRequestRequest req;
    req.mutable_origin()->set_user_id(from);
    req.mutable_request()->set_user_id(to);
    req.mutable_request()->set_greeting("hello");
    v1::SendFriendRequestResult res;
    return On(ShardOfUser(to, 2)).SendFriendRequest(&ctx, &req, &res);
  }
  grpc::Status Accept(uint64_t me, uint64_t from, v1::Contact* res) {
    grpc::ServerContext ctx;
    internal::AcceptFriendRequestRequest req;
    req.mutable_origin()->set_user_id(me);
    req.set_from_user_id(from);
    return On(ShardOfUser(me, 2)).AcceptFriendRequest(&ctx, &req, res);
  }
  v1::ContactsResult Contacts(uint64_t user) {
    grpc::ServerContext ctx;
    internal::UserIdRequest req;
    req.set_user_id(user);
    v1::ContactsResult res;
    auto st = On(ShardOfUser(user, 2)).ListContacts(&ctx, &req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }

  std::vector<chat::testing::ReservedPort> ports_;  // one per shard
  TempDir run_dir_;
  std::atomic<int64_t> now_ms_{0};
  ClusterConfig config_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
};

TEST_F(AccountMultiShardTest, ProfilesAndFriendshipsCrossShards) {
  auto a = NewUser(0, 1, "Alice");
  auto b = NewUser(1, 2, "Bob");

  // Any shard answers profiles of every shard.
  for (uint32_t s = 0; s < 2; ++s) {
    grpc::ServerContext ctx;
    v1::GetProfilesRequest req;
    req.add_user_ids(a.user_id());
    req.add_user_ids(b.user_id());
    v1::ProfilesResult res;
    ASSERT_TRUE(On(s).GetProfiles(&ctx, &req, &res).ok());
    ASSERT_EQ(res.profiles_size(), 2) << "shard " << s;
    EXPECT_EQ(res.profiles(0).display_name(), "Alice");
    EXPECT_EQ(res.profiles(1).display_name(), "Bob");
  }

  // A handle resolves only on its own shard (the gateway asks every shard).
  {
    grpc::ServerContext ctx;
    v1::LookupUserRequest req;
    req.set_handle(a.handle());
    v1::UserProfile p;
    EXPECT_TRUE(On(0).LookupHandle(&ctx, &req, &p).ok());
    EXPECT_EQ(On(1).LookupHandle(&ctx, &req, &p).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // Alice (shard 0) asks Bob (shard 1); the event carries Alice's profile fetched from shard 0.
  ASSERT_TRUE(SendRequest(a.user_id(), b.user_id()).ok());
  auto events = shards_[1]->events.Take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event.friend_request().request().from().display_name(), "Alice");

  v1::Contact contact;
  auto st = Accept(b.user_id(), a.user_id(), &contact);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(contact.profile().display_name(), "Alice");

  auto ca = Contacts(a.user_id());
  ASSERT_EQ(ca.contacts_size(), 1);
  EXPECT_EQ(ca.contacts(0).profile().display_name(), "Bob");
  EXPECT_EQ(ca.contacts(0).since_ms(), contact.since_ms());
  auto cb = Contacts(b.user_id());
  ASSERT_EQ(cb.contacts_size(), 1);
  EXPECT_EQ(cb.contacts(0).profile().display_name(), "Alice");

  grpc::ServerContext ctx;
  internal::CheckFriendsRequest creq;
  creq.set_user_id(a.user_id());
  creq.add_other_ids(b.user_id());
  internal::CheckFriendsResult cres;
  ASSERT_TRUE(On(0).CheckFriends(&ctx, &creq, &cres).ok());
  ASSERT_EQ(cres.friend_ids_size(), 1);
  EXPECT_EQ(cres.friend_ids(0), b.user_id());
}

// Issue 10: "200 concurrent claims of one handle across shards: exactly one wins". Users of both
// shards set the same handle (in several letter cases) at once; the handle's claim shard decides.
TEST_F(AccountMultiShardTest, ConcurrentClaimsOfOneHandleFromBothShardsHaveExactlyOneWinner) {
  constexpr int kClaimants = 200;
  std::vector<uint64_t> users;
  for (int i = 0; i < kClaimants; ++i) users.push_back(NewUser(i % 2, 100 + i, "claimant").user_id());
  const char* spellings[] = {"MoonRiver", "moonriver", "MOONRIVER", "moonRiver"};
  std::atomic<int> ok{0}, taken{0}, other{0};
  std::atomic<uint64_t> winner{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClaimants; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      grpc::ServerContext ctx;
      internal::SetHandleRequest req;
      req.set_user_id(users[i]);
      req.set_handle(spellings[i % 4]);
      v1::Account res;
      auto st = On(ShardOfUser(users[i], 2)).SetHandle(&ctx, &req, &res);
      if (st.ok()) {
        ++ok;
        winner = users[i];
      } else if (st.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
        ++taken;
      } else {
        ++other;
        ADD_FAILURE() << st.error_message();
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(taken.load(), kClaimants - 1);
  EXPECT_EQ(other.load(), 0);
  // Exactly one user of either shard has it, and the lookup of every shard agrees.
  int found = 0;
  for (uint32_t s = 0; s < 2; ++s) {
    grpc::ServerContext ctx;
    v1::LookupUserRequest req;
    req.set_handle("moonriver");
    v1::UserProfile p;
    if (On(s).LookupHandle(&ctx, &req, &p).ok()) {
      ++found;
      EXPECT_EQ(p.user_id(), winner.load());
    }
  }
  EXPECT_EQ(found, 1);
}

TEST_F(AccountMultiShardTest, PhoneOfAnotherShardIsRefused) {
  // A phone belongs to exactly one shard; serving it elsewhere would allow a second account.
  const std::string phone = PhoneOnShard(0, 5);
  grpc::ServerContext ctx;
  v1::RequestCodeRequest req;
  req.set_phone(phone);
  v1::RequestCodeResult res;
  EXPECT_EQ(On(1).RequestCode(&ctx, &req, &res).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(On(0).RequestCode(&ctx, &req, &res).ok());
  v1::SignUpRequest sreq;
  sreq.set_phone(phone);
  sreq.set_code(NewestCode(config_.run_dir, phone));
  sreq.set_display_name("X");
  sreq.set_device_id("d1");
  v1::SessionResult sres;
  EXPECT_EQ(On(1).SignUp(&ctx, &sreq, &sres).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(On(0).SignUp(&ctx, &sreq, &sres).ok());
}

TEST_F(AccountMultiShardTest, AcceptWhileThePeerShardIsDownIsUnavailableAndRetryable) {
  auto c = NewUser(0, 3, "Carol");
  auto b = NewUser(1, 4, "Bob");
  ASSERT_TRUE(SendRequest(c.user_id(), b.user_id()).ok());

  servers_[0]->Shutdown(std::chrono::system_clock::now());
  servers_[0].reset();
  v1::Contact contact;
  auto st = Accept(b.user_id(), c.user_id(), &contact);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();

  // Shard 0 comes back on the same address; the retry completes the friendship once shard 1's
  // channel to it has reconnected (after its backoff, at most 1 s). Each attempt first waits for
  // that reconnection: a channel made the same way (same target, same arguments) shares shard 1's
  // subchannel through gRPC's global subchannel pool, so the probe turns READY with the very
  // connection shard 1 uses. Shard 1's channel learns of it on its own thread, so an attempt right
  // after may still see UNAVAILABLE; the loop is bounded by the deadline.
  servers_[0] = StartServer(config_.account[0].addresses[0], {&shards_[0]->service}, config_.internal_tls);
  auto probe = MakeChannel(config_.account[0], config_.internal_tls, "account-service");
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
  for (;;) {
    probe->WaitForConnected(deadline);
    st = Accept(b.user_id(), c.user_id(), &contact);
    if (st.ok() || st.error_code() != grpc::StatusCode::UNAVAILABLE || std::chrono::system_clock::now() >= deadline)
      break;
  }
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(Contacts(c.user_id()).contacts_size(), 1);
  EXPECT_EQ(Contacts(b.user_id()).contacts_size(), 1);
}

}  // namespace
}  // namespace chat::account
