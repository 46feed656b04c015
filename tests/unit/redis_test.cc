// Redis client, subscriber and delivery publisher against the real dev Redis. Every key and channel
// is unique to this process, so parallel test runs do not see each other.
#include "common/redis.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

#include "common/fanout.h"
#include "fake_fanout.h"
#include "test_env.h"
#include "wait.h"

namespace chat {
namespace {

using chat::testing::ChildWatch;
using chat::testing::ReservedPort;
using chat::testing::TestRedis;
using chat::testing::WaitReadable;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Type = RedisReply::Type;

std::string Unique(const std::string& what) {
  static std::mt19937_64 rng(std::random_device{}());
  return "unit:" + what + ":" + std::to_string(getpid()) + ":" + std::to_string(rng());
}

// Collects messages from subscriber callbacks (on the subscriber's thread) for the test thread.
class Inbox {
 public:
  void Add(std::string_view channel, std::string_view payload) {
    std::lock_guard lk(mu_);
    got_.emplace_back(std::string(channel), std::string(payload));
    cv_.notify_all();
  }
  // Waits until at least n messages arrived or the deadline passed; returns what arrived.
  std::vector<std::pair<std::string, std::string>> WaitForCount(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [&] { return got_.size() >= n; });
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
};

TEST(RedisClient, SetGetDel) {
  RedisClient redis(TestRedis());
  const std::string key = Unique("k");
  const std::string value("bin\0ary\xff value", 14);
  auto set = redis.Command({"SET", key, value, "EX", "60"});
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->type, Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  auto get = redis.Command({"GET", key});
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->type, Type::kString);
  EXPECT_EQ(get->str, value) << "binary-safe";
  auto del = redis.Command({"DEL", key});
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->type, Type::kInteger);
  EXPECT_EQ(del->integer, 1);
  auto gone = redis.Command({"GET", key});
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->type, Type::kNil);
}

TEST(RedisClient, PipelineRepliesInOrder) {
  RedisClient redis(TestRedis());
  const std::string k = Unique("p"), ctr = Unique("ctr"), list = Unique("list");
  auto r = redis.Pipeline({{"SET", k, "v"},
                           {"INCR", ctr},
                           {"INCRBY", ctr, "41"},
                           {"GET", k},
                           {"RPUSH", list, "a", "b"},
                           {"LRANGE", list, "0", "-1"},
                           {"DEL", k, ctr, list}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 7u);
  EXPECT_EQ((*r)[0].type, Type::kStatus);
  EXPECT_EQ((*r)[1].integer, 1);
  EXPECT_EQ((*r)[2].integer, 42);
  EXPECT_EQ((*r)[3].str, "v");
  EXPECT_EQ((*r)[4].integer, 2);
  ASSERT_EQ((*r)[5].type, Type::kArray);
  ASSERT_EQ((*r)[5].elements.size(), 2u);
  EXPECT_EQ((*r)[5].elements[1].str, "b");
  EXPECT_EQ((*r)[6].integer, 3);
  auto empty = redis.Pipeline({});
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(RedisClient, ErrorReplySurfacesAsErrorAndConnectionSurvives) {
  RedisClient redis(TestRedis());
  const std::string k = Unique("e");
  auto unknown = redis.Command({"NO_SUCH_COMMAND_FOR_UNIT_TEST", "x"});
  ASSERT_TRUE(unknown.has_value()) << "an error reply is an answer, not a broken connection";
  EXPECT_EQ(unknown->type, Type::kError);
  EXPECT_FALSE(unknown->str.empty());
  // An error in the middle of a pipeline leaves the other replies in place.
  auto r = redis.Pipeline({{"SET", k, "not a number", "EX", "60"}, {"INCR", k}, {"GET", k}, {"DEL", k}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[1].type, Type::kError);
  EXPECT_NE((*r)[1].str.find("ERR"), std::string::npos) << (*r)[1].str;
  EXPECT_EQ((*r)[2].str, "not a number");
  EXPECT_EQ((*r)[3].integer, 1);
  auto ping = redis.Command({"PING"});
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->str, "PONG");
}

TEST(RedisClient, ConcurrentCallersShareOneClient) {
  RedisClient redis(TestRedis());
  const std::string ctr = Unique("cc");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto r = redis.Command({"INCR", ctr});
        if (!r || r->type != Type::kInteger) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(redis.Command({"GET", ctr}).value_or(RedisReply{}).str, "400");
  redis.Command({"DEL", ctr});
}

TEST(RedisClient, UnreachableIsNullopt) {
  ReservedPort closed(ReservedPort::Use::kClosed);  // nobody answers on it while the test runs
  RedisConfig cfg = TestRedis();
  cfg.port = closed.port();
  cfg.timeout_ms = 500;
  RedisClient redis(cfg);
  auto start = Clock::now();
  EXPECT_FALSE(redis.Command({"PING"}).has_value());
  EXPECT_FALSE(redis.Pipeline({{"PING"}, {"PING"}}).has_value());
  EXPECT_FALSE(redis.Command({"PING"}).has_value()) << "retries the connection lazily, still down";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// The test Redis runs the ACL every cluster runs (deploy/lib/datastores.sh chat_redis_acl): the
// default user is off, and each process kind's user may do only what that kind's code does.
RedisConfig AsKind(const std::string& kind) {
  RedisConfig cfg = TestRedis();
  cfg.user = kind;
  cfg.password.clear();
  cfg.password_file = chat::testing::TestRedisAuthDir() + "/" + kind + ".pass";
  LoadRedisAuth(cfg, kind);
  return cfg;
}

TEST(RedisAuth, WithoutTheRightPasswordNothingIsServed) {
  RedisConfig anonymous = TestRedis();
  anonymous.user.clear();
  anonymous.password.clear();
  RedisClient nobody(anonymous);
  auto r = nobody.Command({"GET", Unique("k")});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, Type::kError);
  EXPECT_NE(r->str.find("NOAUTH"), std::string::npos) << r->str;

  RedisConfig wrong = AsKind("presence-service");
  wrong.password += "x";
  RedisClient impostor(wrong);
  EXPECT_FALSE(impostor.Command({"PING"}).has_value()) << "a refused AUTH is a failed connection";

  RedisClient presence(AsKind("presence-service"));
  auto pong = presence.Command({"PING"});
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->str, "PONG");
}

TEST(RedisAuth, EachKindMayOnlyUseItsOwnCommandsKeysAndChannels) {
  auto refused = [](RedisClient& c, const std::vector<std::string>& cmd) {
    auto r = c.Command(cmd);
    return r.has_value() && r->type == Type::kError && r->str.find("NOPERM") != std::string::npos;
  };
  auto served = [](RedisClient& c, const std::vector<std::string>& cmd) {
    auto r = c.Command(cmd);
    return r.has_value() && r->type != Type::kError;
  };
  const std::string sessions = "pres:" + std::to_string(getpid()) + "0000";
  const std::string channel = GatewayChannel(Unique("gw"));

  RedisClient presence(AsKind("presence-service"));
  EXPECT_TRUE(served(presence, {"HSET", sessions, "f", "v"}));
  EXPECT_TRUE(served(presence, {"HGETALL", sessions}));
  EXPECT_TRUE(served(presence, {"HDEL", sessions, "f"}));
  EXPECT_TRUE(refused(presence, {"GET", Unique("other")})) << "a key outside pres:/presz:/gwlease:";
  EXPECT_TRUE(refused(presence, {"HGETALL", "rl:{1}:messages"})) << "the quotas' keys";
  EXPECT_TRUE(served(presence, {"PUBLISH", channel, "x"})) << "session-cap kicks go to gateways";
  EXPECT_TRUE(refused(presence, {"PUBLISH", "elsewhere", "x"}));
  EXPECT_TRUE(refused(presence, {"FLUSHALL"}));

  for (const char* kind : {"chat-service", "group-service", "account-service"}) {
    SCOPED_TRACE(kind);
    RedisClient publisher(AsKind(kind));
    EXPECT_TRUE(served(publisher, {"PUBLISH", channel, "x"}));
    EXPECT_TRUE(refused(publisher, {"PUBLISH", "elsewhere", "x"}));
    EXPECT_TRUE(refused(publisher, {"HGETALL", sessions})) << "presence's keys are presence's";
    EXPECT_TRUE(served(publisher, {"GET", "rl:{1}:unit-" + Unique("q")})) << "its quota buckets";
    EXPECT_TRUE(refused(publisher, {"CONFIG", "GET", "maxclients"}));
  }

  RedisClient gateway(AsKind("gateway"));
  EXPECT_TRUE(refused(gateway, {"PUBLISH", channel, "x"}));
  EXPECT_TRUE(refused(gateway, {"HGETALL", sessions}));
  // ...and it can subscribe to its channel: a gateway user's subscriber gets a publisher's message.
  Inbox inbox;
  RedisSubscriber sub(AsKind("gateway"), {channel}, [&](std::string_view c, std::string_view p) { inbox.Add(c, p); });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 5s));
  RedisClient chat(AsKind("chat-service"));
  ASSERT_TRUE(served(chat, {"PUBLISH", channel, "ring"}));
  auto got = inbox.WaitForCount(1, 5000ms);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "ring");
  sub.Stop();
}

TEST(RedisSubscriber, ReceivesMessagesPublishedAfterSubscribing) {
  const std::string ch1 = Unique("ch1"), ch2 = Unique("ch2");
  Inbox inbox;
  RedisSubscriber sub(TestRedis(), {ch1, ch2},
                      [&](std::string_view channel, std::string_view payload) { inbox.Add(channel, payload); });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 5s)) << "not subscribed within 5 s";

  RedisClient redis(TestRedis());
  const std::string binary("\0\x01payload\xff", 10);
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "first"}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", ch2, binary}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", Unique("other"), "not for us"}).has_value());
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "third"}).has_value());

  auto got = inbox.WaitForCount(3, std::chrono::milliseconds(5000));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(ch1, std::string("first")));
  EXPECT_EQ(got[1], std::make_pair(ch2, binary));
  EXPECT_EQ(got[2], std::make_pair(ch1, std::string("third")));

  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "Stop() must join promptly";
  EXPECT_FALSE(sub.connected());
  // Nothing is delivered after Stop returned.
  ASSERT_TRUE(redis.Command({"PUBLISH", ch1, "late"}).has_value());
  EXPECT_EQ(inbox.WaitForCount(4, std::chrono::milliseconds(300)).size(), 3u);
}

TEST(RedisSubscriber, DrainedRunsAfterTheLastMessageThatHadArrived) {
  // The gateway flushes held events in on_drained: it must run after every burst, with nothing
  // left unseen.
  const std::string ch = Unique("burst");
  std::mutex mu;
  std::condition_variable cv;
  int messages = 0, seen_at_last_drain = -1, drains = 0;
  RedisSubscriber sub(
      TestRedis(), {ch},
      [&](std::string_view, std::string_view) {
        std::lock_guard lk(mu);
        ++messages;
      },
      {},
      [&] {
        std::lock_guard lk(mu);
        ++drains;
        seen_at_last_drain = messages;
        cv.notify_all();
      });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 5s)) << "not subscribed within 5 s";
  RedisClient redis(TestRedis());
  std::vector<std::vector<std::string>> burst;
  for (int i = 0; i < 50; ++i) burst.push_back({"PUBLISH", ch, "m" + std::to_string(i)});
  ASSERT_TRUE(redis.Pipeline(burst).has_value());
  {
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return seen_at_last_drain == 50; }))
        << "after " << messages << " messages the last drain had seen " << seen_at_last_drain;
    EXPECT_LE(drains, messages + 1);
  }
  sub.Stop();
}

TEST(RedisSubscriber, StopsPromptlyWhenRedisIsUnreachable) {
  ReservedPort closed(ReservedPort::Use::kClosed);
  RedisConfig cfg = TestRedis();
  cfg.port = closed.port();
  cfg.timeout_ms = 500;
  RedisSubscriber sub(cfg, {Unique("ch")}, [](std::string_view, std::string_view) {});
  sub.Start();
  EXPECT_FALSE(sub.WaitConnected(true, 300ms));
  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisSubscriber, StopWithoutStartAndTwice) {
  RedisSubscriber never(TestRedis(), {Unique("ch")}, [](std::string_view, std::string_view) {});
  never.Stop();
  RedisSubscriber twice(TestRedis(), {Unique("ch")}, [](std::string_view, std::string_view) {});
  twice.Start();
  twice.Stop();
  twice.Stop();
}

TEST(RedisDeliveryPublisher, FanoutReachesTheGatewayChannel) {
  const std::string gw_a = Unique("gwa"), gw_b = Unique("gwb");
  Inbox inbox_a, inbox_b;
  RedisSubscriber sub_a(TestRedis(), {GatewayChannel(gw_a)},
                        [&](std::string_view c, std::string_view p) { inbox_a.Add(c, p); });
  RedisSubscriber sub_b(TestRedis(), {GatewayChannel(gw_b)},
                        [&](std::string_view c, std::string_view p) { inbox_b.Add(c, p); });
  sub_a.Start();
  sub_b.Start();
  ASSERT_TRUE(sub_a.WaitConnected(true, 5s) && sub_b.WaitConnected(true, 5s));

  testing::FakePresenceDirectory presence;
  for (uint64_t u = 1; u <= 50; ++u) presence.AddSession(u, u <= 30 ? gw_a : gw_b, 100 + u);
  RedisDeliveryPublisher publisher(TestRedis());
  Fanout fanout(presence, publisher);

  std::vector<FanoutItem> items;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    FanoutItem item;
    for (uint64_t u = 1; u <= 60; ++u) item.user_ids.push_back(u);  // 51..60 offline
    item.event.mutable_message()->mutable_message()->set_conversation_id("g.9");
    item.event.mutable_message()->mutable_message()->set_seq(seq);
    item.conversation_id = "g.9";
    item.skip_session_id = 101;
    items.push_back(std::move(item));
  }
  EXPECT_EQ(fanout.Deliver(items), 6u);

  auto got_a = inbox_a.WaitForCount(3, std::chrono::milliseconds(5000));
  auto got_b = inbox_b.WaitForCount(3, std::chrono::milliseconds(5000));
  ASSERT_EQ(got_a.size(), 3u);
  ASSERT_EQ(got_b.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    for (auto* got : {&got_a, &got_b}) {
      internal::Delivery d;
      ASSERT_TRUE(d.ParseFromString((*got)[i].second));
      v1::Event e;
      ASSERT_TRUE(e.ParseFromString(d.event()));
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(e, items[i].event));
      EXPECT_EQ(e.message().message().seq(), static_cast<uint64_t>(i + 1)) << "order kept on the channel";
      EXPECT_EQ(d.conversation_id(), "g.9");
      EXPECT_EQ(d.skip_session_id(), 101u);
      EXPECT_EQ(d.user_ids_size(), got == &got_a ? 30 : 20);
    }
  }
  EXPECT_EQ(got_a[0].first, GatewayChannel(gw_a));
  EXPECT_EQ(got_b[0].first, GatewayChannel(gw_b));
}

TEST(RedisDeliveryPublisher, UnreachableRedisFails) {
  ReservedPort closed(ReservedPort::Use::kClosed);
  RedisConfig cfg = TestRedis();
  cfg.port = closed.port();
  RedisDeliveryPublisher publisher(cfg);
  EXPECT_FALSE(publisher.Publish({{"gw.x", "payload"}}));
  EXPECT_TRUE(publisher.Publish({})) << "nothing to publish is not a failure";
}

// A private redis-server, so a test can kill and restart it without disturbing the shared test
// Redis. Its port is held (ReservedPort, SO_REUSEADDR like redis-server's own listener) for the
// object's whole life: a restart gets the same port, and nothing else can take it in between.
// Fails the test (never skips) if redis-server cannot be started. One thread uses it.
class PrivateRedis {
 public:
  PrivateRedis() : port_(ReservedPort::Use::kForListener) {
    // redis-server --supervised systemd sends READY=1 here (sd_notify) once it accepts connections.
    notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    notify_name_ = "@chat-redis-test." + std::to_string(getpid()) + "." + std::to_string(port_.port());
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, notify_name_.data() + 1, notify_name_.size() - 1);  // abstract: leading NUL
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + notify_name_.size());
    EXPECT_EQ(::bind(notify_fd_, reinterpret_cast<sockaddr*>(&a), len), 0) << std::strerror(errno);
  }
  ~PrivateRedis() {
    Kill();
    ::close(notify_fd_);
  }
  static constexpr const char* kPassword = "private-redis-test-password";
  RedisConfig config() const {
    RedisConfig cfg;
    cfg.host = "127.0.0.1";
    cfg.port = port_.port();
    cfg.timeout_ms = 500;
    cfg.password = kPassword;  // so a reconnect must authenticate again
    return cfg;
  }
  // Starts the server and waits (10 s at most) for its READY=1, then checks that it answers PING.
  // False when it cannot be spawned, exits first or stays silent.
  bool Start() {
    std::string port = std::to_string(port_.port());
    std::vector<std::string> args = {"redis-server",  "--port", port,           "--bind",       "127.0.0.1",
                                     "--save",        "",       "--appendonly", "no",           "--loglevel",
                                     "warning",       "--dir",  "/tmp",         "--supervised", "systemd",
                                     "--requirepass", kPassword};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = {"NOTIFY_SOCKET=" + notify_name_};
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_strings.push_back(*e);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    char stale[256];
    while (::recv(notify_fd_, stale, sizeof stale, 0) > 0) {
    }
    pid_t pid = -1;
    if (posix_spawnp(&pid, "redis-server", nullptr, nullptr, argv.data(), envp.data()) != 0) return false;
    child_ = ChildWatch(pid);
    const auto deadline = Clock::now() + 10s;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (WaitReadable({notify_fd_, child_.fd()}, std::max(left, 0ms)) != 0) return false;  // exited, or silent
      char buf[512];
      const ssize_t n = ::recv(notify_fd_, buf, sizeof buf, 0);
      if (n > 0 && std::string_view(buf, static_cast<size_t>(n)).find("READY=1") != std::string_view::npos) break;
    }
    RedisClient probe(config());
    auto r = probe.Command({"PING"});
    return r && r->str == "PONG";
  }
  void Kill() {
    if (child_.pid() <= 0) return;
    ::kill(child_.pid(), SIGKILL);
    child_.WaitExit(30s);
  }

 private:
  ReservedPort port_;
  int notify_fd_ = -1;
  std::string notify_name_;
  ChildWatch child_;
};

TEST(RedisRestart, SubscriberAndClientRecoverByThemselves) {
  PrivateRedis server;
  ASSERT_TRUE(server.Start()) << "could not start redis-server on a free port";
  const std::string ch = Unique("restart");
  Inbox inbox;
  std::atomic<int> reconnects{0};
  RedisSubscriber sub(
      server.config(), {ch}, [&](std::string_view c, std::string_view p) { inbox.Add(c, p); }, [&] { ++reconnects; });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 5s));
  EXPECT_EQ(reconnects.load(), 0) << "the first subscription is not a reconnect";
  RedisClient client(server.config());
  ASSERT_TRUE(client.Command({"PUBLISH", ch, "before"}).has_value());
  ASSERT_EQ(inbox.WaitForCount(1, std::chrono::milliseconds(5000)).size(), 1u);
  RedisClient idle(server.config());  // connected, then unused until the server is back
  ASSERT_TRUE(idle.Command({"PING"}).has_value());

  server.Kill();
  EXPECT_TRUE(sub.WaitConnected(false, 5s)) << "subscriber did not notice the server died";
  EXPECT_FALSE(client.Command({"PING"}).has_value()) << "a dead server is nullopt, not an exception";

  ASSERT_TRUE(server.Start()) << "could not restart redis-server";
  ASSERT_TRUE(sub.WaitConnected(true, 5s)) << "subscriber did not resubscribe";
  EXPECT_EQ(reconnects.load(), 1) << "the owner is told so it can prompt a resync";
  // A client whose connection died while it was unused notices on its first call and runs the call
  // again on a new connection: the first call after the restart succeeds.
  ASSERT_TRUE(idle.Command({"PING"}).has_value()) << "the first call after a restart failed";
  ASSERT_TRUE(client.Command({"PUBLISH", ch, "after"}).has_value());
  auto got = inbox.WaitForCount(2, std::chrono::milliseconds(5000));
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.back().second, "after");

  auto start = Clock::now();
  sub.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace chat
