// GrpcPresenceDirectory against in-process fake presence shards that, like presence-service, refuse a
// Lookup of more than 10000 ids: a big fan-out round must still find every online user.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "common/fanout.h"
#include "common/shard.h"
#include "test_env.h"

namespace chat {
namespace {

constexpr int kPresenceMaxIds = 10000;  // presence-service's own limit

// Every looked-up user is online on gateway "gw-<shard>". Records the size of each request.
class FakePresence : public internal::PresenceService::Service {
 public:
  explicit FakePresence(int shard) : shard_(shard) {}
  grpc::Status Lookup(grpc::ServerContext*, const internal::LookupRequest* req, internal::LookupResult* res) override {
    {
      std::lock_guard lk(mu_);
      sizes_.push_back(req->user_ids_size());
    }
    if (req->user_ids_size() > kPresenceMaxIds)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "too many user ids");
    for (uint64_t u : req->user_ids()) {
      auto* s = res->add_sessions();
      s->set_user_id(u);
      s->set_gateway_id("gw-" + std::to_string(shard_));
      s->set_session_id(u);
    }
    return grpc::Status::OK;
  }
  std::vector<int> Sizes() {
    std::lock_guard lk(mu_);
    return sizes_;
  }

 private:
  const int shard_;
  std::mutex mu_;
  std::vector<int> sizes_;
};

struct FakeShard {
  explicit FakeShard(int shard) : service(shard) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.SetMaxReceiveMessageSize(16 * 1024 * 1024);
    b.RegisterService(&service);
    server = b.BuildAndStart();
  }
  ~FakeShard() { server->Shutdown(); }
  FakePresence service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

TEST(PresenceLookupChunks, BigRoundIsSplitSoEveryUserIsFound) {
  FakeShard s0(0), s1(1);
  ASSERT_TRUE(s0.server && s0.port > 0 && s1.server && s1.port > 0);
  std::vector<ShardConfig> shards(2);
  shards[0].addresses = {"127.0.0.1:" + std::to_string(s0.port)};
  shards[1].addresses = {"127.0.0.1:" + std::to_string(s1.port)};
  GrpcPresenceDirectory presence(shards, chat::testing::InProcessPlaintext(), 10000);

  // 30000 users, so each shard gets well over presence's 10000 limit.
  std::vector<uint64_t> users;
  size_t on_shard[2] = {0, 0};
  for (uint64_t u = 1; u <= 30000; ++u) {
    users.push_back(u * 7919);
    ++on_shard[ShardOfUser(u * 7919, 2)];
  }
  ASSERT_GT(on_shard[0], static_cast<size_t>(kPresenceMaxIds));
  ASSERT_GT(on_shard[1], static_cast<size_t>(kPresenceMaxIds));

  std::vector<internal::SessionRef> sessions;
  EXPECT_TRUE(presence.Lookup(users, &sessions));
  std::set<uint64_t> found;
  for (const auto& s : sessions) {
    found.insert(s.user_id());
    EXPECT_EQ(s.gateway_id(), "gw-" + std::to_string(ShardOfUser(s.user_id(), 2)));  // asked the right shard
  }
  EXPECT_EQ(found, std::set<uint64_t>(users.begin(), users.end()));
  EXPECT_EQ(sessions.size(), users.size());  // each user asked once
  FakeShard* fakes[2] = {&s0, &s1};
  for (int s = 0; s < 2; ++s) {
    size_t total = 0;
    for (int n : fakes[s]->service.Sizes()) {
      EXPECT_LE(n, static_cast<int>(GrpcPresenceDirectory::kMaxIdsPerLookup));
      EXPECT_GT(n, 0);
      total += static_cast<size_t>(n);
    }
    EXPECT_EQ(total, on_shard[s]);
  }
}

TEST(PresenceLookupChunks, SmallRoundIsOneRequestPerShard) {
  FakeShard s0(0);
  ASSERT_TRUE(s0.server && s0.port > 0);
  std::vector<ShardConfig> shards(1);
  shards[0].addresses = {"127.0.0.1:" + std::to_string(s0.port)};
  GrpcPresenceDirectory presence(shards, chat::testing::InProcessPlaintext(), 10000);
  std::vector<uint64_t> users = {11, 22, 33};
  std::vector<internal::SessionRef> sessions;
  EXPECT_TRUE(presence.Lookup(users, &sessions));
  EXPECT_EQ(sessions.size(), 3u);
  EXPECT_EQ(s0.service.Sizes(), std::vector<int>{3});
}

}  // namespace
}  // namespace chat
