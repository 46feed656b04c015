// End-to-end authentication: a token is accepted only for an existing account (docs/security.md,
// "The account behind a token"), and tokens survive a key rotation until their key is retired
// ("Rotating the token key").
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "cluster.h"
#include "common/token.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;

// Opens a connection to `gateway` with `token` on the upgrade; the HTTP status and error come back.
std::unique_ptr<Connection> Upgrade(const TestCluster& cluster, int gateway, const std::string& token, bool in_query,
                                    int* http, std::string* error) {
  auto o = cluster.Options(gateway, kProto);
  o.token = token;
  o.token_in_query = in_query;
  return Connection::Connect(o, error, http);
}

int64_t InAnHour() { return static_cast<int64_t>(std::time(nullptr)) + 3600; }

// A user id on no account: ids are random 63-bit numbers, so a fixed large one is free.
constexpr uint64_t kNobody = (uint64_t{1} << 62) + 4242;

class AccountCheck : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.gateways = 1;
    o.chat_shards = 1;
    o.limits.gateway.account_check_cache_ttl_ms = 0;  // every upgrade asks account-service
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }
  TestCluster& cluster() { return *cluster_; }
  static TestCluster* cluster_;
};
TestCluster* AccountCheck::cluster_ = nullptr;

TEST_F(AccountCheck, ValidlySignedTokenOfNoAccountIsRefused) {
  const std::string token = cluster().signer().Issue({kNobody, "phone-1", InAnHour()});
  for (bool in_query : {false, true}) {
    SCOPED_TRACE(in_query ? "token in the query" : "token in the header");
    int http = 0;
    std::string error;
    EXPECT_FALSE(Upgrade(cluster(), 0, token, in_query, &http, &error)) << "the upgrade was accepted";
    EXPECT_EQ(http, 401) << error;
    EXPECT_NE(error.find("account not found"), std::string::npos) << error;
  }
  // The authenticate request: UNAUTHENTICATED (as for a bad token), and the connection stays
  // unauthenticated.
  std::string error;
  auto c = Connection::Connect(cluster().Options(0, kJson), &error);
  ASSERT_TRUE(c) << error;
  v1::Reply r = client::Authenticate(*c, token);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  r = client::GetMe(*c);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << "a token of no account authenticated the connection";
  // A real user's token without a session (the format from before sessions) is refused too; signed
  // the same way with her live session, it gets in.
  User alice = cluster().SignUp(0, kProto, "Alice");
  int http = 0;
  EXPECT_FALSE(
      Upgrade(cluster(), 0, cluster().signer().Issue({alice.id, alice.device_id, InAnHour()}), false, &http, &error));
  EXPECT_EQ(http, 401) << error;
  auto claims = cluster().signer().Verify(alice.token, InAnHour() - 3600);
  ASSERT_TRUE(claims);
  claims->expires_s = InAnHour();
  auto ok = Upgrade(cluster(), 0, cluster().signer().Issue(*claims), false, &http, &error);
  ASSERT_TRUE(ok) << error;
  r = client::GetMe(*ok);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.account().profile().user_id(), alice.id);
}

TEST_F(AccountCheck, KnownUsersGetInWhileAccountServiceIsDownOthersAreToldToRetry) {
  User bob = cluster().SignUp(0, kProto, "Bob");  // his sign-up connection does not go through the check
  int http = 0;
  std::string error;
  ASSERT_TRUE(Upgrade(cluster(), 0, bob.token, false, &http, &error)) << error;  // confirmed: now cached
  // Carol has an account, but this gateway never checked a token of hers.
  const User carol = cluster().SignUp(0, kJson, "Carol");

  cluster().StopAccountShard(0);
  auto bob_again = Upgrade(cluster(), 0, bob.token, false, &http, &error);
  EXPECT_TRUE(bob_again) << "a user the gateway confirmed before was refused during the outage: " << error;
  EXPECT_FALSE(Upgrade(cluster(), 0, carol.token, false, &http, &error));
  EXPECT_EQ(http, 503) << error;
  EXPECT_NE(error.find("retry"), std::string::npos) << error;
  cluster().StartAccountShard(0);

  // Back: Carol gets in, retrying on 503 with a backoff as protocol.md 4.1 tells clients to (the
  // gateway's channel to account-service reconnects within its 1 s reconnect backoff).
  std::unique_ptr<Connection> carol_again;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!(carol_again = Upgrade(cluster(), 0, carol.token, false, &http, &error)) && http == 503 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);  // the client's retry backoff, not a wait for an event
  ASSERT_TRUE(carol_again) << error;
  v1::Reply r = client::GetMe(*carol_again);
  EXPECT_EQ(r.status(), v1::OK) << client::DescribeError(r);
}

// Each case restarts the account service and gateways several times: a cluster of its own.
TEST(TokenRotation, OldTokensLiveThroughARotationAndDieWithTheirKey) {
  ClusterOptions o;
  o.chat_shards = 1;
  TestCluster cluster(o);
  const TokenKey old_key = cluster.config().token_keys.keys.at(0);
  const TokenKey new_key{"e2e-2", "e2e-" + client::NewClientMsgId() + "-rotated-key", false};
  auto ring = [](std::vector<TokenKey> keys, const std::string& signing) {
    TokenKeys k;
    k.keys = std::move(keys);
    k.signing_key_id = signing;
    return k;
  };
  User alice = cluster.SignUp(0, kProto, "Alice");
  const std::string old_token = alice.token;
  ASSERT_EQ(old_token.rfind("v2." + old_key.id + ".", 0), 0u) << old_token;
  auto connects = [&](const std::string& token, int gateway, int* http) {
    std::string error;
    auto c = Upgrade(cluster, gateway, token, false, http, &error);
    if (!c) return false;
    return client::GetMe(*c).status() == v1::OK;
  };
  int http = 0;

  // 1. The new key is added, verify-only: the old token works on every gateway.
  cluster.RestartWithTokenKeys(ring({old_key, new_key}, old_key.id));
  EXPECT_TRUE(connects(old_token, 0, &http)) << http;
  EXPECT_TRUE(connects(old_token, 1, &http)) << http;

  // 2. The new key signs: new tokens name it, the old token still works.
  cluster.RestartWithTokenKeys(ring({old_key, new_key}, new_key.id));
  EXPECT_TRUE(connects(old_token, 0, &http)) << http;
  EXPECT_TRUE(connects(old_token, 1, &http)) << http;
  std::string error;
  auto c = Upgrade(cluster, 0, old_token, false, &http, &error);
  ASSERT_TRUE(c) << error;
  v1::Reply r = client::RefreshToken(*c);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  const std::string new_token = r.session().token();
  EXPECT_EQ(new_token.rfind("v2." + new_key.id + ".", 0), 0u) << new_token;
  EXPECT_TRUE(connects(new_token, 1, &http)) << http;
  User bob = cluster.SignUp(1, kJson, "Bob");
  EXPECT_EQ(bob.token.rfind("v2." + new_key.id + ".", 0), 0u) << bob.token;

  // 3. The old key is retired: its token is refused like a forged one; the new ones work.
  cluster.RestartWithTokenKeys(ring({new_key}, new_key.id));
  for (int gw : {0, 1}) {
    EXPECT_FALSE(connects(old_token, gw, &http)) << "gateway " << gw << " still accepts the retired key";
    EXPECT_EQ(http, 401);
    EXPECT_TRUE(connects(new_token, gw, &http)) << http;
    EXPECT_TRUE(connects(bob.token, gw, &http)) << http;
  }
}

}  // namespace
}  // namespace chat::e2e
