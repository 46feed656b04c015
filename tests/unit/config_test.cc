// The cluster config: defaults, overrides, and errors an operator can act on (each names its key).
#include "common/config.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <stdexcept>
#include <string>

namespace chat {
namespace {

// Every field of chat::Limits. A limit added to Limits must be added here (and to ParseConfig).
// clang-format off
#define CHAT_ALL_LIMITS(X) \
  X(max_frame_bytes) \
  X(send_queue_max_frames) \
  X(send_queue_max_bytes) \
  X(handshake_timeout_ms) \
  X(auth_timeout_ms) \
  X(idle_timeout_ms) \
  X(drain_timeout_ms) \
  X(max_connections) \
  X(requests_per_second) \
  X(request_burst) \
  X(max_inflight_requests) \
  X(rpc_deadline_ms) \
  X(max_text_chars) \
  X(max_client_msg_id_chars) \
  X(history_page_max) \
  X(history_page_default) \
  X(send_batch_max) \
  X(max_group_members) \
  X(max_group_name_chars) \
  X(invite_code_member_limit) \
  X(code_ttl_s) \
  X(code_max_tries) \
  X(code_resend_interval_s) \
  X(token_ttl_s) \
  X(max_display_name_chars) \
  X(max_greeting_chars) \
  X(max_friends) \
  X(friend_request_ttl_s) \
  X(presence_ttl_ms) \
  X(max_connections_per_ip) \
  X(new_connections_per_ip_per_second) \
  X(new_connections_per_ip_burst) \
  X(send_committers) \
  X(send_queue_max) \
  X(friend_cache_ttl_ms) \
  X(send_calls_per_shard) \
  X(send_queue_max_wait_ms) \
  X(max_codes_per_phone_per_day) \
  X(max_code_failures_per_phone_per_day) \
  X(max_codes_per_shard_per_minute)
// clang-format on

constexpr char kShards[] = R"(
  "services": {
    "account":  [{"addresses": ["127.0.0.1:7001"], "database": "account_0"}],
    "presence": [{"addresses": ["127.0.0.1:7101"]}],
    "chat":     [{"addresses": ["127.0.0.1:7201", "127.0.0.1:7202"], "database": "chat_0"},
                 {"addresses": ["127.0.0.1:7211"], "database": "chat_1"}],
    "group":    [{"addresses": ["127.0.0.1:7301"], "database": "group_0"}]
  })";

std::string Minimal(const std::string& extra = "") {
  return std::string(R"({"secret": "0123456789abcdef",)") + kShards + (extra.empty() ? "" : "," + extra) + "}";
}

// Returns the error message of ParseConfig(json), or "" if it parsed.
std::string ErrorOf(const std::string& json) {
  try {
    ParseConfig(json);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, MinimalConfigGetsEveryDefault) {
  ClusterConfig c = ParseConfig(Minimal());
  const Limits defaults;
#define CHECK_DEFAULT(name) EXPECT_EQ(c.limits.name, defaults.name) << #name;
  CHAT_ALL_LIMITS(CHECK_DEFAULT)
#undef CHECK_DEFAULT
  EXPECT_EQ(c.secret, "0123456789abcdef");
  const ClusterConfig d;
  EXPECT_EQ(c.run_dir, d.run_dir);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.code_sender, d.code_sender);
  EXPECT_EQ(c.postgres.host, d.postgres.host);
  EXPECT_EQ(c.postgres.port, d.postgres.port);
  EXPECT_EQ(c.postgres.pool_size, d.postgres.pool_size);
  EXPECT_EQ(c.redis.port, d.redis.port);
  EXPECT_TRUE(c.gateways.empty());
  ASSERT_EQ(c.chat.size(), 2u);
  EXPECT_EQ(c.chat[0].addresses, (std::vector<std::string>{"127.0.0.1:7201", "127.0.0.1:7202"}));
  EXPECT_EQ(c.chat[1].database, "chat_1");
  ASSERT_EQ(c.presence.size(), 1u);
  EXPECT_EQ(c.presence[0].database, "");
}

TEST(Config, DefaultsPassValidation) {
  // The documented defaults are themselves a valid configuration.
  const Limits d;
  EXPECT_GE(d.max_frame_bytes, 256u);
  EXPECT_GT(d.send_queue_max_frames, 0u);
  EXPECT_GE(d.presence_ttl_ms, 300u);
  EXPECT_LE(d.history_page_default, d.history_page_max);
  EXPECT_LT(d.max_connections, 20000u);  // the per-process file limit of this machine
}

TEST(Config, EveryLimitCanBeOverridden) {
  // Each limit set to default + 7 (passes every validation rule), all at once.
  const Limits d;
  std::string limits = R"("limits": {)";
  bool first = true;
#define ADD_OVERRIDE(name)                                                                  \
  limits += std::string(first ? "" : ",") + "\"" #name "\": " + std::to_string(d.name + 7); \
  first = false;
  CHAT_ALL_LIMITS(ADD_OVERRIDE)
#undef ADD_OVERRIDE
  limits += "}";
  ClusterConfig c = ParseConfig(Minimal(limits));
#define CHECK_OVERRIDE(name) EXPECT_EQ(c.limits.name, d.name + 7) << #name << " was not read from the config";
  CHAT_ALL_LIMITS(CHECK_OVERRIDE)
#undef CHECK_OVERRIDE
}

TEST(Config, OverridesTopLevelSections) {
  ClusterConfig c = ParseConfig(Minimal(R"(
    "run_dir": "/tmp/x", "log_level": "debug",
    "postgres": {"host": "db.local", "port": 6543, "user": "chat", "password": "pw", "pool_size": 3},
    "redis": {"host": "10.0.0.2", "port": 7000, "timeout_ms": 500},
    "gateways": [{"id": "gw-a", "listen": "0.0.0.0:8080"}, {"id": "gw-b", "listen": "0.0.0.0:8081"}],
    "limits": {"max_frame_bytes": 1024, "token_ttl_s": 8589934592})"));
  EXPECT_EQ(c.run_dir, "/tmp/x");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.postgres.host, "db.local");
  EXPECT_EQ(c.postgres.port, 6543);
  EXPECT_EQ(c.postgres.user, "chat");
  EXPECT_EQ(c.postgres.password, "pw");
  EXPECT_EQ(c.postgres.pool_size, 3);
  EXPECT_EQ(c.redis.host, "10.0.0.2");
  EXPECT_EQ(c.redis.port, 7000);
  EXPECT_EQ(c.redis.timeout_ms, 500);
  ASSERT_EQ(c.gateways.size(), 2u);
  EXPECT_EQ(c.gateways[1].id, "gw-b");
  EXPECT_EQ(c.gateways[1].listen, "0.0.0.0:8081");
  EXPECT_EQ(c.limits.max_frame_bytes, 1024u);
  EXPECT_EQ(c.limits.token_ttl_s, 8589934592ull);               // uint64 limit beyond 32 bits
  EXPECT_EQ(c.limits.max_text_chars, Limits().max_text_chars);  // untouched ones keep defaults
}

struct BadCase {
  const char* what;
  std::string json;
  const char* key;  // must appear in the error message
};

TEST(Config, EachErrorNamesItsKey) {
  const std::string shards_without_chat = R"(
    "services": {"account": [{"addresses": ["a:1"]}], "presence": [{"addresses": ["a:2"]}],
                 "group": [{"addresses": ["a:3"]}])";
  const std::string shards_with =
      R"("services": {"account": [{"addresses": ["a:1"]}], "presence": [{"addresses": ["a:2"]}],
                 "group": [{"addresses": ["a:3"]}], "chat": )";
  const BadCase cases[] = {
      {"missing secret", std::string("{") + kShards + "}", "secret"},
      {"short secret", std::string(R"({"secret": "short",)") + kShards + "}", "secret"},
      {"secret of wrong type", std::string(R"({"secret": 1234567890123456789,)") + kShards + "}", "secret"},
      {"no chat shards", R"({"secret": "0123456789abcdef",)" + shards_without_chat + "}}", "services.chat"},
      {"empty chat shards", R"({"secret": "0123456789abcdef",)" + shards_with + "[]}}", "services.chat"},
      {"chat not an array", R"({"secret": "0123456789abcdef",)" + shards_with + "{}}}", "services.chat"},
      {"shard without addresses", R"({"secret": "0123456789abcdef",)" + shards_with + R"([{"database": "c"}]}})",
       "services.chat[0].addresses"},
      {"shard with empty addresses",
       R"({"secret": "0123456789abcdef",)" + shards_with + R"([{"addresses": ["a:4"]}, {"addresses": []}]}})",
       "services.chat[1].addresses"},
      {"address not a string", R"({"secret": "0123456789abcdef",)" + shards_with + R"([{"addresses": ["a:4", 5]}]}})",
       "services.chat[0].addresses"},
      {"addresses not an array", R"({"secret": "0123456789abcdef",)" + shards_with + R"([{"addresses": "a:4"}]}})",
       "services.chat[0].addresses"},
      {"shard not an object", R"({"secret": "0123456789abcdef",)" + shards_with + R"(["a:4"]}})", "services.chat[0]"},
      {"database wrong type",
       R"({"secret": "0123456789abcdef",)" + shards_with + R"([{"addresses": ["a:4"], "database": 7}]}})",
       "services.chat[0].database"},
      {"no services", R"({"secret": "0123456789abcdef"})", "services.account"},
      {"postgres port wrong type", Minimal(R"("postgres": {"port": "5432x"})"), "postgres.port"},
      {"redis port wrong type", Minimal(R"("redis": {"port": true})"), "redis.port"},
      {"limit wrong type", Minimal(R"("limits": {"max_frame_bytes": "big"})"), "limits.max_frame_bytes"},
      {"limit negative", Minimal(R"("limits": {"max_text_chars": -1})"), "limits.max_text_chars"},
      {"limit beyond 32 bits", Minimal(R"("limits": {"max_text_chars": 4294967296})"), "limits.max_text_chars"},
      {"limit fractional", Minimal(R"("limits": {"max_text_chars": 1.5})"), "limits.max_text_chars"},
      {"limit below minimum", Minimal(R"("limits": {"max_frame_bytes": 10})"), "limits.max_frame_bytes"},
      {"presence ttl too small", Minimal(R"("limits": {"presence_ttl_ms": 1})"), "limits.presence_ttl_ms"},
      {"no wait for a send", Minimal(R"("limits": {"send_queue_max_wait_ms": 0})"), "limits.send_queue_max_wait_ms"},
      {"gateways not an array", Minimal(R"("gateways": {"id": "a"})"), "gateways"},
      {"gateway without listen", Minimal(R"("gateways": [{"id": "a"}])"), "gateways[0]"},
      {"gateway id wrong type", Minimal(R"("gateways": [{"id": 1, "listen": "x:1"}])"), "gateways[0].id"},
      {"postgres not an object", Minimal(R"("postgres": "localhost")"), "postgres"},
      {"redis not an object", Minimal(R"("redis": 6379)"), "redis"},
      {"limits not an object", Minimal(R"("limits": [1, 2])"), "limits"},
      {"services not an object", R"({"secret": "0123456789abcdef", "services": []})", "services"},
      {"not JSON", "{\"secret\": ", "JSON"},
      {"not JSON at all", "secret=abc", "JSON"},
      {"root not an object", "[]", "(root)"},
  };
  for (const auto& c : cases) {
    std::string err = ErrorOf(c.json);
    EXPECT_FALSE(err.empty()) << c.what << ": accepted";
    EXPECT_NE(err.find(c.key), std::string::npos) << c.what << ": error \"" << err << "\" does not name " << c.key;
  }
}

TEST(Config, LoadConfigReportsMissingFile) {
  try {
    LoadConfig("/nonexistent/chat/cluster.json");
    FAIL() << "loaded a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/chat/cluster.json"), std::string::npos) << e.what();
  }
}

TEST(Config, ShardTargetNamesEveryReplica) {
  ShardConfig one;
  one.addresses = {"127.0.0.1:7001"};
  EXPECT_EQ(one.Target(), "ipv4:127.0.0.1:7001");
  ShardConfig two;
  two.addresses = {"127.0.0.1:7001", "10.1.2.3:7002"};
  EXPECT_EQ(two.Target(), "ipv4:127.0.0.1:7001,10.1.2.3:7002");
}

// Parses a libpq conninfo string the way libpq will, keyword -> value.
std::map<std::string, std::string> ParseConnInfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  std::map<std::string, std::string> out;
  if (!opts) {
    std::string msg = err ? err : "?";
    PQfreemem(err);
    out["<error>"] = msg;
    return out;
  }
  for (auto* o = opts; o->keyword; ++o)
    if (o->val) out[o->keyword] = o->val;
  PQconninfoFree(opts);
  return out;
}

TEST(Config, PostgresConnInfoFormat) {
  PostgresConfig pg;
  pg.host = "127.0.0.1";
  pg.port = 5432;
  pg.user = "postgres";
  EXPECT_EQ(pg.ConnInfo("chat_0"), "host=127.0.0.1 port=5432 user=postgres dbname=chat_0 connect_timeout=5");
  pg.password = "s3cret";
  EXPECT_EQ(pg.ConnInfo("chat_0"),
            "host=127.0.0.1 port=5432 user=postgres dbname=chat_0 connect_timeout=5 password=s3cret");
  auto kv = ParseConnInfo(pg.ConnInfo("chat_0"));
  EXPECT_EQ(kv["host"], "127.0.0.1");
  EXPECT_EQ(kv["port"], "5432");
  EXPECT_EQ(kv["user"], "postgres");
  EXPECT_EQ(kv["dbname"], "chat_0");
  EXPECT_EQ(kv["password"], "s3cret");
}

TEST(Config, PostgresConnInfoSurvivesSpecialCharacters) {
  // Operators pick passwords; libpq must see exactly what the config says.
  PostgresConfig pg;
  pg.user = "chat user";
  pg.password = "p w'd\\x=";
  auto kv = ParseConnInfo(pg.ConnInfo("my db"));
  EXPECT_EQ(kv.count("<error>"), 0u) << kv["<error>"];
  EXPECT_EQ(kv["user"], "chat user");
  EXPECT_EQ(kv["password"], "p w'd\\x=");
  EXPECT_EQ(kv["dbname"], "my db");
  EXPECT_EQ(kv["host"], "127.0.0.1");
}

}  // namespace
}  // namespace chat
