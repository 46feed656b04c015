// presence-service against a real Redis (tests/run starts it). Every test uses its own random
// gateway and user ids, so tests never see each other's keys and need no flush.
#include "presence/presence_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string_view>

#include "common/fanout.h"
#include "common/grpc_util.h"
#include "common/status.h"
#include "test_env.h"
#include "wait.h"

namespace chat::presence {
namespace {

using namespace std::chrono_literals;
using internal::LookupRequest;
using internal::LookupResult;
using internal::RegisterRequest;
using internal::SessionRef;

// Makes Redis publish keyspace notifications for expired keys ("K" and "x" of notify-keyspace-events,
// added to whatever is set). The flags are left on: the test Redis is private to tests/run, other
// test processes may be waiting on the same notifications, and they cost only a publish per expiry.
bool EnableExpiryNotifications(RedisClient& redis) {
  auto now = redis.Command({"CONFIG", "GET", "notify-keyspace-events"});
  if (!now || now->elements.size() != 2) return false;
  const std::string flags = now->elements[1].str;
  const bool expired = flags.find('x') != std::string::npos || flags.find('A') != std::string::npos;
  if (flags.find('K') != std::string::npos && expired) return true;
  auto set = redis.Command({"CONFIG", "SET", "notify-keyspace-events", flags + "Kx"});
  return set && set->type == RedisReply::Type::kStatus;
}

class PresenceTest : public ::testing::Test {
 protected:
  PresenceTest() : redis_(chat::testing::TestRedis()), service_({.redis = &redis_, .limits = &limits_}) {}

  uint64_t NewUser() { return (rng_() >> 1) | 1; }
  std::string NewGateway(const std::string& name) {
    return "test-" + name + "." + std::to_string(getpid()) + "." + std::to_string(rng_() % 1000000000);
  }
  static SessionRef Ref(uint64_t user, const std::string& device, const std::string& gw, uint64_t session) {
    SessionRef r;
    r.set_user_id(user);
    r.set_device_id(device);
    r.set_gateway_id(gw);
    r.set_session_id(session);
    return r;
  }
  grpc::Status Heartbeat(const std::string& gw, uint32_t ttl_ms) {
    grpc::ServerContext ctx;
    internal::GatewayHeartbeatRequest req;
    req.set_gateway_id(gw);
    req.set_ttl_ms(ttl_ms);
    v1::Empty res;
    return service_.GatewayHeartbeat(&ctx, &req, &res);
  }
  grpc::Status Register(const std::vector<SessionRef>& refs) {
    grpc::ServerContext ctx;
    RegisterRequest req;
    for (const auto& r : refs) *req.add_sessions() = r;
    v1::Empty res;
    return service_.Register(&ctx, &req, &res);
  }
  grpc::Status Unregister(const std::vector<SessionRef>& refs) {
    grpc::ServerContext ctx;
    RegisterRequest req;
    for (const auto& r : refs) *req.add_sessions() = r;
    v1::Empty res;
    return service_.Unregister(&ctx, &req, &res);
  }
  // Sessions as sortable tuples "user/device/gateway/session".
  std::set<std::string> Lookup(const std::vector<uint64_t>& users, grpc::Status* status = nullptr) {
    grpc::ServerContext ctx;
    LookupRequest req;
    for (uint64_t u : users) req.add_user_ids(u);
    LookupResult res;
    auto st = service_.Lookup(&ctx, &req, &res);
    if (status)
      *status = st;
    else
      EXPECT_TRUE(st.ok()) << st.error_message();
    std::set<std::string> out;
    for (const auto& s : res.sessions()) out.insert(Key(s));
    EXPECT_EQ(out.size(), static_cast<size_t>(res.sessions_size())) << "duplicate sessions in lookup";
    return out;
  }
  static std::string Key(const SessionRef& s) {
    return std::to_string(s.user_id()) + "/" + s.device_id() + "/" + s.gateway_id() + "/" +
           std::to_string(s.session_id());
  }

  Limits limits_;
  RedisClient redis_;
  PresenceServiceImpl service_;
  std::mt19937_64 rng_{std::random_device{}()};
};

TEST_F(PresenceTest, RegisterAndLookupAcrossGatewaysAndDevices) {
  auto gw_a = NewGateway("a"), gw_b = NewGateway("b");
  ASSERT_TRUE(Heartbeat(gw_a, 30000).ok());
  ASSERT_TRUE(Heartbeat(gw_b, 30000).ok());
  uint64_t alice = NewUser(), bob = NewUser(), carol = NewUser();
  auto a1 = Ref(alice, "phone", gw_a, 11), a2 = Ref(alice, "laptop", gw_b, 12), b1 = Ref(bob, "phone", gw_b, 13);
  ASSERT_TRUE(Register({a1, a2, b1}).ok());

  EXPECT_EQ(Lookup({alice}), (std::set<std::string>{Key(a1), Key(a2)}));
  EXPECT_EQ(Lookup({alice, bob, carol}), (std::set<std::string>{Key(a1), Key(a2), Key(b1)}));
  EXPECT_TRUE(Lookup({carol}).empty());
  // Repeated ids are answered once.
  EXPECT_EQ(Lookup({bob, bob, bob}), (std::set<std::string>{Key(b1)}));
  // Registering again is idempotent and refreshes the hash's expiry (2 days).
  ASSERT_TRUE(Register({a1}).ok());
  EXPECT_EQ(Lookup({alice}).size(), 2u);
  auto ttl = redis_.Command({"TTL", SessionsKey(alice)});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, kSessionHashTtlSeconds - 60);
  EXPECT_LE(ttl->integer, kSessionHashTtlSeconds);
}

TEST_F(PresenceTest, UnregisterRemovesOnlyThatSession) {
  auto gw = NewGateway("u");
  ASSERT_TRUE(Heartbeat(gw, 30000).ok());
  uint64_t alice = NewUser();
  auto s1 = Ref(alice, "phone", gw, 1), s2 = Ref(alice, "tablet", gw, 2);
  ASSERT_TRUE(Register({s1, s2}).ok());
  ASSERT_TRUE(Unregister({s1}).ok());
  EXPECT_EQ(Lookup({alice}), (std::set<std::string>{Key(s2)}));
  // Unregistering twice is harmless.
  ASSERT_TRUE(Unregister({s1}).ok());
  ASSERT_TRUE(Unregister({s2}).ok());
  EXPECT_TRUE(Lookup({alice}).empty());
}

// Returns once the system clock's millisecond has moved on, so the next Register scores later than
// everything before it (presence orders sessions by the ms of their last Register).
void NextMillisecond() {
  using namespace std::chrono;
  const auto now = [] { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); };
  const auto start = now();
  while (now() == start) {
  }
}

TEST_F(PresenceTest, BeyondTheSessionCapTheSessionIdleLongestIsRemovedAndKicked) {
  limits_.presence.max_sessions_per_user = 3;
  auto gw_a = NewGateway("cap-a"), gw_b = NewGateway("cap-b"), gw_dead = NewGateway("cap-dead");
  ASSERT_TRUE(Heartbeat(gw_a, 30000).ok());
  ASSERT_TRUE(Heartbeat(gw_b, 30000).ok());
  chat::testing::Signal arrived;  // guards `kicks`
  std::vector<std::pair<std::string, internal::Delivery>> kicks;
  RedisSubscriber sub(chat::testing::TestRedis(), {GatewayChannel(gw_a), GatewayChannel(gw_b), GatewayChannel(gw_dead)},
                      [&](std::string_view channel, std::string_view payload) {
                        internal::Delivery d;
                        ASSERT_TRUE(d.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
                        arrived.Update([&] { kicks.emplace_back(std::string(channel), d); });
                      });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 10s));

  const uint64_t alice = NewUser();
  auto s1 = Ref(alice, "phone", gw_a, 1), s2 = Ref(alice, "tablet", gw_b, 2), s3 = Ref(alice, "web", gw_a, 3);
  for (const auto& s : {s1, s2, s3}) {
    NextMillisecond();
    ASSERT_TRUE(Register({s}).ok());
  }
  NextMillisecond();
  ASSERT_TRUE(Register({s1}).ok()) << "the phone was active: its gateway registers it again";
  EXPECT_EQ(Lookup({alice}).size(), 3u) << "at the cap nothing is removed";

  auto s4 = Ref(alice, "desktop", gw_a, 4);
  NextMillisecond();
  ASSERT_TRUE(Register({s4}).ok());
  EXPECT_EQ(Lookup({alice}), (std::set<std::string>{Key(s1), Key(s3), Key(s4)})) << "the tablet was idle longest";
  ASSERT_TRUE(arrived.WaitFor([&] { return !kicks.empty(); }, 10s));
  {
    std::pair<std::string, internal::Delivery> first;
    arrived.Update([&] { first = kicks[0]; });  // a read under the mutex
    const auto& [channel, d] = first;
    EXPECT_EQ(channel, GatewayChannel(gw_b)) << "the kick goes to the tablet's gateway";
    EXPECT_EQ(d.kick_session_id(), 2u);
    ASSERT_EQ(d.user_ids_size(), 1);
    EXPECT_EQ(d.user_ids(0), alice);
    v1::Event e;
    ASSERT_TRUE(e.ParseFromString(d.event()));
    EXPECT_EQ(e.kicked().close_code(), 4010u);
  }

  // A session on a gateway that died (no lease) is forgotten before any live one is kicked.
  auto s5 = Ref(alice, "old", gw_dead, 5);
  NextMillisecond();
  ASSERT_TRUE(Register({s5}).ok());  // over the cap: evicts the oldest live one (s3)
  ASSERT_TRUE(redis_.Command({"DEL", LeaseKey(gw_dead)}).has_value());
  auto s6 = Ref(alice, "new", gw_a, 6);
  NextMillisecond();
  ASSERT_TRUE(Register({s6}).ok());
  EXPECT_EQ(Lookup({alice}), (std::set<std::string>{Key(s1), Key(s4), Key(s6)}));
  ASSERT_TRUE(arrived.WaitFor([&] { return kicks.size() >= 2; }, 10s));
  std::vector<std::pair<std::string, internal::Delivery>> all;
  arrived.Update([&] { all = kicks; });
  ASSERT_EQ(all.size(), 2u) << "s3 was kicked for s5; s5 (dead gateway) was dropped without a kick";
  EXPECT_EQ(all[1].first, GatewayChannel(gw_a));
  EXPECT_EQ(all[1].second.kick_session_id(), 3u);
  auto card = redis_.Command({"ZCARD", SessionOrderKey(alice)});
  ASSERT_TRUE(card.has_value());
  EXPECT_EQ(card->integer, 3) << "the order set forgets what the hash forgets";
}

TEST_F(PresenceTest, SessionsOfAGatewayWhoseLeaseExpiresDisappear) {
  auto dying = NewGateway("dying"), healthy = NewGateway("healthy");
  // Redis tells when the dying gateway's lease expires (a keyspace notification), subscribed to
  // before the lease exists so that it cannot be missed.
  ASSERT_TRUE(EnableExpiryNotifications(redis_));
  chat::testing::Signal expiry;
  bool expired = false;
  RedisSubscriber lease_events(chat::testing::TestRedis(), {"__keyspace@0__:" + LeaseKey(dying)},
                               [&](std::string_view, std::string_view event) {
                                 if (event == "expired") expiry.Update([&] { expired = true; });
                               });
  lease_events.Start();
  ASSERT_TRUE(lease_events.WaitConnected(true, 10s));
  ASSERT_TRUE(Heartbeat(dying, 300).ok());
  ASSERT_TRUE(Heartbeat(healthy, 30000).ok());
  uint64_t alice = NewUser(), bob = NewUser();
  auto on_dying = Ref(alice, "phone", dying, 21), other_dying = Ref(bob, "phone", dying, 22);
  auto on_healthy = Ref(alice, "laptop", healthy, 23);
  ASSERT_TRUE(Register({on_dying, other_dying, on_healthy}).ok());
  ASSERT_EQ(Lookup({alice, bob}).size(), 3u);

  // The dying gateway never heartbeats again: once its lease is gone its sessions drop out.
  ASSERT_TRUE(expiry.WaitFor([&] { return expired; }, 10s)) << "the 300 ms lease did not expire within 10 s";
  lease_events.Stop();
  std::set<std::string> seen = Lookup({alice, bob});
  EXPECT_EQ(seen, (std::set<std::string>{Key(on_healthy)}));
  // The lookup removed the dead gateway's entries from the hashes.
  auto left = redis_.Command({"HEXISTS", SessionsKey(alice), SessionField(dying, 21)});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->integer, 0);
  auto still = redis_.Command({"HEXISTS", SessionsKey(alice), SessionField(healthy, 23)});
  ASSERT_TRUE(still);
  EXPECT_EQ(still->integer, 1);
}

TEST_F(PresenceTest, HeartbeatWithoutTtlUsesConfiguredLease) {
  auto gw = NewGateway("default");
  ASSERT_TRUE(Heartbeat(gw, 0).ok());
  auto pttl = redis_.Command({"PTTL", LeaseKey(gw)});
  ASSERT_TRUE(pttl);
  EXPECT_GT(pttl->integer, static_cast<long long>(limits_.presence.presence_ttl_ms) - 5000);
  EXPECT_LE(pttl->integer, static_cast<long long>(limits_.presence.presence_ttl_ms));
  EXPECT_EQ(Heartbeat(gw, kMaxLeaseTtlMs + 1).error_code(), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(Heartbeat("", 1000).error_code(), ToGrpc(v1::INVALID_ARGUMENT));
}

TEST_F(PresenceTest, RegisteringMakesAGatewayAliveWithoutShorteningItsLease) {
  auto gw = NewGateway("fresh");
  uint64_t alice = NewUser();
  auto s = Ref(alice, "phone", gw, 5);
  ASSERT_TRUE(Register({s}).ok());  // no heartbeat yet
  EXPECT_EQ(Lookup({alice}), (std::set<std::string>{Key(s)}));
  ASSERT_TRUE(Heartbeat(gw, 600000).ok());
  ASSERT_TRUE(Register({s}).ok());
  auto pttl = redis_.Command({"PTTL", LeaseKey(gw)});
  ASSERT_TRUE(pttl);
  EXPECT_GT(pttl->integer, 500000);
}

TEST_F(PresenceTest, BatchedLookupOfManyUsers) {
  auto gw_a = NewGateway("ba"), gw_b = NewGateway("bb");
  ASSERT_TRUE(Heartbeat(gw_a, 30000).ok());
  ASSERT_TRUE(Heartbeat(gw_b, 30000).ok());
  std::vector<uint64_t> online, everyone;
  std::vector<SessionRef> refs;
  for (int i = 0; i < 3000; ++i) {
    uint64_t u = NewUser();
    online.push_back(u);
    refs.push_back(Ref(u, "d", i % 2 ? gw_a : gw_b, 1000 + i));
  }
  ASSERT_TRUE(Register(refs).ok());
  everyone = online;
  for (int i = 0; i < 2000; ++i) everyone.push_back(NewUser());  // offline users
  std::shuffle(everyone.begin(), everyone.end(), rng_);

  auto found = Lookup(everyone);
  std::set<std::string> expected;
  for (const auto& r : refs) expected.insert(Key(r));
  EXPECT_EQ(found, expected);
  ASSERT_TRUE(Unregister(refs).ok());
}

TEST_F(PresenceTest, InputCaps) {
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < kMaxIdsPerCall; ++i) ids.push_back(NewUser());
  grpc::Status st;
  Lookup(ids, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  ids.push_back(NewUser());
  Lookup(ids, &st);
  EXPECT_EQ(st.error_code(), ToGrpc(v1::INVALID_ARGUMENT));

  auto gw = NewGateway("cap");
  std::vector<SessionRef> refs(kMaxIdsPerCall + 1, Ref(NewUser(), "d", gw, 1));
  EXPECT_EQ(Register(refs).error_code(), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(Register({Ref(0, "d", gw, 1)}).error_code(), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(Register({Ref(NewUser(), "d", "", 1)}).error_code(), ToGrpc(v1::INVALID_ARGUMENT));
  EXPECT_EQ(Register({Ref(NewUser(), std::string(kMaxDeviceIdChars + 1, 'x'), gw, 1)}).error_code(),
            ToGrpc(v1::INVALID_ARGUMENT));
}

TEST(PresenceUnavailableTest, UnreachableRedisIsUnavailable) {
  // A port nobody listens on, held for the test so that nothing can start listening there.
  chat::testing::ReservedPort closed(chat::testing::ReservedPort::Use::kClosed);
  RedisConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = closed.port();
  cfg.timeout_ms = 500;
  RedisClient redis(cfg);
  Limits limits;
  PresenceServiceImpl service({.redis = &redis, .limits = &limits});
  grpc::ServerContext ctx;
  LookupRequest req;
  req.add_user_ids(42);
  LookupResult res;
  EXPECT_EQ(service.Lookup(&ctx, &req, &res).error_code(), ToGrpc(v1::UNAVAILABLE));
  internal::GatewayHeartbeatRequest hb;
  hb.set_gateway_id("gw");
  v1::Empty empty;
  EXPECT_EQ(service.GatewayHeartbeat(&ctx, &hb, &empty).error_code(), ToGrpc(v1::UNAVAILABLE));
}

}  // namespace
}  // namespace chat::presence

namespace chat::presence {
namespace {

// The whole doorbell path: chat::Fanout asks this service over real gRPC where users are, and
// publishes one Delivery per gateway on Redis, which a gateway-like subscriber receives.
TEST(PresenceFanoutTest, FanoutPublishesOneDeliveryPerGateway) {
  auto redis_cfg = chat::testing::TestRedis();
  RedisClient redis(redis_cfg);
  Limits limits;
  PresenceServiceImpl service({.redis = &redis, .limits = &limits});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server);
  ASSERT_GT(port, 0);

  std::mt19937_64 rng{std::random_device{}()};
  std::string tag = std::to_string(getpid()) + "." + std::to_string(rng() % 1000000000);
  std::string gw_a = "fan-a." + tag, gw_b = "fan-b." + tag;
  uint64_t alice = (rng() >> 1) | 1, bob = (rng() >> 1) | 1, carol = (rng() >> 1) | 1;

  ShardConfig shard;
  shard.addresses = {"127.0.0.1:" + std::to_string(port)};
  GrpcPresenceDirectory directory({shard}, chat::testing::InProcessPlaintext(), 5000);
  auto stub = internal::PresenceService::NewStub(MakeChannel(
      shard, chat::testing::InProcessPlaintext(), ServerNameOf(internal::PresenceService::service_full_name())));
  for (const auto& gw : {gw_a, gw_b}) {
    internal::GatewayHeartbeatRequest hb;
    hb.set_gateway_id(gw);
    hb.set_ttl_ms(30000);
    v1::Empty empty;
    auto ctx = MakeContext(5000);
    ASSERT_TRUE(stub->GatewayHeartbeat(ctx.get(), hb, &empty).ok());
  }
  internal::RegisterRequest reg;
  auto add = [&](uint64_t u, const std::string& gw, uint64_t session) {
    auto* s = reg.add_sessions();
    s->set_user_id(u);
    s->set_device_id("d");
    s->set_gateway_id(gw);
    s->set_session_id(session);
  };
  add(alice, gw_a, 1);
  add(bob, gw_a, 2);
  add(bob, gw_b, 3);
  v1::Empty empty;
  auto ctx = MakeContext(5000);
  ASSERT_TRUE(stub->Register(ctx.get(), reg, &empty).ok());

  chat::testing::Signal arrived;  // guards `got`
  std::map<std::string, std::vector<internal::Delivery>> got;
  RedisSubscriber sub(redis_cfg, {GatewayChannel(gw_a), GatewayChannel(gw_b)},
                      [&](std::string_view channel, std::string_view payload) {
                        internal::Delivery d;
                        ASSERT_TRUE(d.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
                        arrived.Update([&] { got[std::string(channel)].push_back(d); });
                      });
  sub.Start();
  ASSERT_TRUE(sub.WaitConnected(true, 10s));

  RedisDeliveryPublisher publisher(redis_cfg);
  Fanout fanout(directory, publisher);
  FanoutItem item;
  item.user_ids = {alice, bob, carol};  // carol is offline
  item.event.mutable_group_changed()->set_actor_id(alice);
  item.skip_session_id = 1;
  EXPECT_EQ(fanout.Deliver({item}), 2u);

  arrived.WaitFor([&] { return got[GatewayChannel(gw_a)].size() + got[GatewayChannel(gw_b)].size() >= 2; }, 10s);
  sub.Stop();  // no callback runs after Stop returns: `got` is the test's alone from here
  ASSERT_EQ(got[GatewayChannel(gw_a)].size(), 1u);
  ASSERT_EQ(got[GatewayChannel(gw_b)].size(), 1u);
  const auto& da = got[GatewayChannel(gw_a)][0];
  EXPECT_EQ(std::set<uint64_t>(da.user_ids().begin(), da.user_ids().end()), (std::set<uint64_t>{alice, bob}));
  EXPECT_EQ(da.skip_session_id(), 1u);
  v1::Event event;
  ASSERT_TRUE(event.ParseFromString(da.event()));
  EXPECT_EQ(event.group_changed().actor_id(), alice);
  const auto& db = got[GatewayChannel(gw_b)][0];
  EXPECT_EQ(std::set<uint64_t>(db.user_ids().begin(), db.user_ids().end()), (std::set<uint64_t>{bob}));
  server->Shutdown();
}

}  // namespace
}  // namespace chat::presence
