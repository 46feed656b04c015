// SendCoalescer against an in-process fake chat shard over real gRPC: sends that arrive while the
// shard's call slots are busy leave together in the next SendBatch call, and every send gets its
// own answer.
#include "send_coalescer.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "test_env.h"

namespace chat::gateway {
namespace {

using namespace std::chrono_literals;

// Answers every send with message_id = its client_msg_id, except client_msg_id "deny" (refused).
// The first call waits until Release(), so the test controls when a slot frees up.
class FakeChat : public internal::ChatService::Service {
 public:
  grpc::Status SendBatch(grpc::ServerContext*, const internal::SendBatchRequest* req,
                         internal::SendBatchResult* res) override {
    std::unique_lock lk(mu_);
    batch_sizes_.push_back(req->sends_size());
    cv_.notify_all();
    if (batch_sizes_.size() == 1) cv_.wait(lk, [&] { return released_; });
    for (const auto& s : req->sends()) {
      auto* item = res->add_results();
      if (s.request().client_msg_id() == "deny") {
        item->set_code(grpc::StatusCode::PERMISSION_DENIED);
        item->set_message("you can only message friends");
      } else {
        item->mutable_result()->set_message_id(s.request().client_msg_id());
      }
    }
    return grpc::Status::OK;
  }
  void WaitForCalls(size_t n) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return batch_sizes_.size() >= n; });
  }
  void Release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }
  std::vector<int> BatchSizes() {
    std::lock_guard lk(mu_);
    return batch_sizes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> batch_sizes_;
  bool released_ = false;
};

internal::SendRequest Req(const std::string& cmid) {
  internal::SendRequest r;
  r.mutable_request()->set_conversation_id("d.1.2");
  r.mutable_request()->set_client_msg_id(cmid);
  return r;
}

// One fake chat shard on a loopback port, shut down when this goes out of scope.
struct FakeShardServer {
  explicit FakeShardServer(FakeChat& chat) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&chat);
    server = b.BuildAndStart();
    if (port <= 0) server.reset();
  }
  ~FakeShardServer() {
    if (server) server->Shutdown();
  }
  std::vector<ShardConfig> Shards() const {
    std::vector<ShardConfig> shards(1);
    shards[0].addresses = {"127.0.0.1:" + std::to_string(port)};
    return shards;
  }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

struct Answer {
  grpc::StatusCode code;
  std::string message_id;
};

// The answers to sends 0..n-1 submitted through one coalescer, each awaited at most 10 s.
class Answers {
 public:
  Answers(SendCoalescer& coalescer, size_t n) : coalescer_(coalescer), promises_(n) {}
  void Submit(int i, const std::string& cmid) {
    coalescer_.Submit(0, Req(cmid), [this, i](const grpc::Status& st, v1::SendMessageResult&& r) {
      promises_[i].set_value(Answer{st.error_code(), r.message_id()});
    });
  }
  Answer Get(int i) {
    auto f = promises_[i].get_future();
    if (f.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "send " << i << " got no answer";
      return Answer{grpc::StatusCode::UNKNOWN, "<no answer>"};
    }
    return f.get();
  }

 private:
  SendCoalescer& coalescer_;
  std::vector<std::promise<Answer>> promises_;
};

TEST(SendCoalescer, SendsWaitingForASlotLeaveTogetherAndEachGetsItsAnswer) {
  chat::testing::KeepGrpcCallbackQueueUp();
  FakeChat chat;
  FakeShardServer fake(chat);
  ASSERT_TRUE(fake.server) << "the fake chat shard did not start";
  {
    ShardedStubs<internal::ChatService> stubs(fake.Shards(), chat::testing::InProcessPlaintext());
    SendCoalescer coalescer(stubs, 10000, /*batch_max=*/3, /*inflight_per_shard=*/1, /*max_wait_ms=*/60000);

    Answers answers(coalescer, 6);
    auto submit = [&](int i, const std::string& cmid) { answers.Submit(i, cmid); };
    submit(0, "m0");
    chat.WaitForCalls(1);  // m0 alone holds the only slot
    submit(1, "m1");
    submit(2, "deny");
    submit(3, "m3");
    submit(4, "m4");
    submit(5, "m5");
    chat.Release();
    std::vector<Answer> got;
    for (int i = 0; i < 6; ++i) got.push_back(answers.Get(i));
    // The five waiting sends left in batch_max-sized calls, in order: [m1 deny m3] then [m4 m5].
    EXPECT_EQ(chat.BatchSizes(), (std::vector<int>{1, 3, 2}));
    for (int i : {0, 1, 3, 4, 5}) {
      EXPECT_EQ(got[i].code, grpc::StatusCode::OK) << i;
      EXPECT_EQ(got[i].message_id, "m" + std::to_string(i));
    }
    EXPECT_EQ(got[2].code, grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST(SendCoalescer, SendsThatWaitTooLongAreRefusedAndNewOnesAreRefusedWhileTheQueueIsThatOld) {
  chat::testing::KeepGrpcCallbackQueueUp();
  FakeChat chat;
  FakeShardServer fake(chat);
  ASSERT_TRUE(fake.server) << "the fake chat shard did not start";
  {
    ShardedStubs<internal::ChatService> stubs(fake.Shards(), chat::testing::InProcessPlaintext());
    std::atomic<int64_t> now_ms{0};  // the coalescer's clock, moved by the test
    SendCoalescer coalescer(stubs, 10000, /*batch_max=*/8, /*inflight_per_shard=*/1, /*max_wait_ms=*/100, [&] {
      return std::chrono::steady_clock::time_point(std::chrono::milliseconds(now_ms.load()));
    });
    Answers answers(coalescer, 5);
    auto submit = [&](int i, const std::string& cmid) { answers.Submit(i, cmid); };
    auto answer = [&](int i) { return answers.Get(i); };
    submit(0, "m0");
    chat.WaitForCalls(1);  // m0 holds the only slot until Release
    submit(1, "old");      // waits from t=0
    now_ms = 60;
    submit(2, "young");  // waits from t=60
    now_ms = 150;        // "old" has waited 150 ms > 100: the queue is backed up
    submit(3, "turned-away");
    EXPECT_EQ(answer(3).code, grpc::StatusCode::RESOURCE_EXHAUSTED) << "refused at once, without a call";
    chat.Release();  // the slot frees at t=150: "old" is refused, "young" (90 ms) goes
    EXPECT_EQ(answer(0).code, grpc::StatusCode::OK);
    EXPECT_EQ(answer(1).code, grpc::StatusCode::RESOURCE_EXHAUSTED);
    Answer young = answer(2);
    EXPECT_EQ(young.code, grpc::StatusCode::OK);
    EXPECT_EQ(young.message_id, "young");
    submit(4, "later");  // the queue is empty again: accepted
    EXPECT_EQ(answer(4).code, grpc::StatusCode::OK);
    EXPECT_EQ(chat.BatchSizes(), (std::vector<int>{1, 1, 1}));
  }
}

TEST(SendCoalescer, AnUnreachableShardFailsEverySendOfTheCall) {
  chat::testing::KeepGrpcCallbackQueueUp();
  std::vector<ShardConfig> shards(1);
  shards[0].addresses = {"127.0.0.1:1"};  // nothing listens on port 1
  ShardedStubs<internal::ChatService> stubs(shards, chat::testing::InProcessPlaintext());
  SendCoalescer coalescer(stubs, 2000, 16, 1, 60000);
  std::promise<grpc::StatusCode> a, b2;
  coalescer.Submit(0, Req("x"), [&](const grpc::Status& st, v1::SendMessageResult&&) { a.set_value(st.error_code()); });
  coalescer.Submit(0, Req("y"),
                   [&](const grpc::Status& st, v1::SendMessageResult&&) { b2.set_value(st.error_code()); });
  auto fa = a.get_future(), fb = b2.get_future();
  ASSERT_EQ(fa.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(fb.wait_for(10s), std::future_status::ready);
  EXPECT_NE(fa.get(), grpc::StatusCode::OK);
  EXPECT_NE(fb.get(), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace chat::gateway
