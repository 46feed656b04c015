// The cluster config: defaults, overrides, and errors an operator can act on (each names its key).
#include "common/config.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace chat {
namespace {

// The services, and the internal plane in the development mode (its own tests are below).
constexpr char kShards[] = R"(
  "internal_tls": {"insecure_plaintext": true},
  "services": {
    "account":  [{"addresses": ["127.0.0.1:7001"], "database": "account_0"}],
    "presence": [{"addresses": ["127.0.0.1:7101"]}],
    "chat":     [{"addresses": ["127.0.0.1:7201", "127.0.0.1:7202"], "database": "chat_0"},
                 {"addresses": ["127.0.0.1:7211"], "database": "chat_1"}],
    "group":    [{"addresses": ["127.0.0.1:7301"], "database": "group_0"}]
  })";

std::string Minimal(const std::string& extra = "") {
  return std::string(R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)") + kShards +
         (extra.empty() ? "" : "," + extra) + "}";
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
#define CHECK_DEFAULT(section, type, name, def, lo, hi) \
  EXPECT_EQ(c.limits.section.name, defaults.section.name) << #name;
  CHAT_ALL_LIMITS(CHECK_DEFAULT)
#undef CHECK_DEFAULT
  // The one-key shorthand: one key that signs and verifies v1 tokens too.
  ASSERT_EQ(c.token_keys.keys.size(), 1u);
  EXPECT_EQ(c.token_keys.keys[0].id, kSecretKeyId);
  EXPECT_EQ(c.token_keys.keys[0].secret, "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f");
  EXPECT_TRUE(c.token_keys.keys[0].legacy_v1);
  EXPECT_EQ(c.token_keys.signing_key_id, kSecretKeyId);
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
  EXPECT_GE(d.gateway.max_frame_bytes, 256u);
  EXPECT_GT(d.gateway.send_queue_max_frames, 0u);
  EXPECT_GE(d.presence.presence_ttl_ms, 300u);
  EXPECT_LE(d.chat.history_page_default, d.chat.history_page_max);
  EXPECT_LT(d.gateway.max_connections, 20000u);  // the per-process file limit of this machine
  for (const LimitInfo& l : AllLimits()) {
    EXPECT_GE(l.default_value, l.min) << l.section << "." << l.name;
    EXPECT_LE(l.default_value, l.max) << l.section << "." << l.name;
  }
}

TEST(Config, EveryLimitCanBeOverridden) {
  // Each limit set to a value other than its default that passes its range check, all at once.
  const Limits d;
  auto other = [](const LimitInfo& l) { return l.default_value + 7 <= l.max ? l.default_value + 7 : l.min; };
  std::map<std::string, std::string> sections;
  for (const LimitInfo& l : AllLimits()) {
    std::string& body = sections[l.section];
    body += std::string(body.empty() ? "" : ",") + "\"" + l.name + "\": " + std::to_string(other(l));
  }
  std::string limits = R"("limits": {)";
  for (const auto& [section, body] : sections)
    limits += std::string(limits.back() == '{' ? "" : ",") + "\"" + section + "\": {" + body + "}";
  limits += "}";
  ClusterConfig c = ParseConfig(Minimal(limits));
  size_t i = 0;
#define CHECK_OVERRIDE(section, type, name, def, lo, hi)                                               \
  EXPECT_EQ(c.limits.section.name, other(AllLimits()[i])) << #name << " was not read from the config"; \
  EXPECT_NE(c.limits.section.name, d.section.name) << #name;                                           \
  ++i;
  CHAT_ALL_LIMITS(CHECK_OVERRIDE)
#undef CHECK_OVERRIDE
  EXPECT_EQ(i, AllLimits().size());
}

TEST(Config, OverridesTopLevelSections) {
  ClusterConfig c = ParseConfig(Minimal(R"(
    "run_dir": "/tmp/x", "log_level": "debug",
    "postgres": {"host": "db.local", "port": 6543, "user": "chat", "password": "pw", "pool_size": 3},
    "redis": {"host": "10.0.0.2", "port": 7000, "timeout_ms": 500},
    "gateways": [{"id": "gw-a", "listen": "0.0.0.0:8080"},
                 {"id": "gw-b", "listen": "0.0.0.0:8081", "trusted_proxies": ["10.0.0.5", "192.168.0.0/16", "fd00::/8"]}],
    "limits": {"gateway": {"max_frame_bytes": 1024}, "account": {"token_ttl_s": 8589934592}})"));
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
  EXPECT_TRUE(c.gateways[0].trusted_proxies.empty());
  EXPECT_EQ(c.gateways[1].trusted_proxies, (std::vector<std::string>{"10.0.0.5", "192.168.0.0/16", "fd00::/8"}));
  EXPECT_EQ(c.limits.gateway.max_frame_bytes, 1024u);
  EXPECT_EQ(c.limits.account.token_ttl_s, 8589934592ull);                 // uint64 limit beyond 32 bits
  EXPECT_EQ(c.limits.chat.max_text_chars, Limits().chat.max_text_chars);  // untouched ones keep defaults
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
      {"no chat shards",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_without_chat + "}}",
       "services.chat"},
      {"empty chat shards",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with + "[]}}",
       "services.chat"},
      {"chat not an array",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with + "{}}}",
       "services.chat"},
      {"shard without addresses",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"database": "c"}]}})",
       "services.chat[0].addresses"},
      {"shard with empty addresses",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": ["a:4"]}, {"addresses": []}]}})",
       "services.chat[1].addresses"},
      {"address not a string",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": ["a:4", 5]}]}})",
       "services.chat[0].addresses"},
      {"addresses not an array",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": "a:4"}]}})",
       "services.chat[0].addresses"},
      {"shard not an object",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"(["a:4"]}})",
       "services.chat[0]"},
      {"database wrong type",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": ["a:4"], "database": 7}]}})",
       "services.chat[0].database"},
      {"no services", R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f"})",
       "services.account"},
      {"postgres port wrong type", Minimal(R"("postgres": {"port": "5432x"})"), "postgres.port"},
      {"redis port wrong type", Minimal(R"("redis": {"port": true})"), "redis.port"},
      {"limit wrong type", Minimal(R"("limits": {"gateway": {"max_frame_bytes": "big"}})"),
       "limits.gateway.max_frame_bytes"},
      {"limit negative", Minimal(R"("limits": {"chat": {"max_text_chars": -1}})"), "limits.chat.max_text_chars"},
      {"limit beyond 32 bits", Minimal(R"("limits": {"chat": {"max_text_chars": 4294967296}})"),
       "limits.chat.max_text_chars"},
      {"limit fractional", Minimal(R"("limits": {"chat": {"max_text_chars": 1.5}})"), "limits.chat.max_text_chars"},
      {"limit below minimum", Minimal(R"("limits": {"gateway": {"max_frame_bytes": 10}})"),
       "limits.gateway.max_frame_bytes"},
      {"presence ttl too small", Minimal(R"("limits": {"presence": {"presence_ttl_ms": 1}})"),
       "limits.presence.presence_ttl_ms"},
      {"no wait for a send", Minimal(R"("limits": {"gateway": {"send_queue_max_wait_ms": 0}})"),
       "limits.gateway.send_queue_max_wait_ms"},
      {"gateways not an array", Minimal(R"("gateways": {"id": "a"})"), "gateways"},
      {"gateway without listen", Minimal(R"("gateways": [{"id": "a"}])"), "gateways[0]"},
      {"gateway id wrong type", Minimal(R"("gateways": [{"id": 1, "listen": "x:1"}])"), "gateways[0].id"},
      {"trusted proxies not an array",
       Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "trusted_proxies": "10.0.0.1"}])"),
       "gateways[0].trusted_proxies"},
      {"trusted proxy a host name",
       Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "trusted_proxies": ["lb.local"]}])"),
       "gateways[0].trusted_proxies"},
      {"trusted proxy with host bits",
       Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "trusted_proxies": ["10.0.0.1/8"]}])"),
       "gateways[0].trusted_proxies"},
      {"trusted proxy prefix too long",
       Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "trusted_proxies": ["10.0.0.0/33"]}])"),
       "gateways[0].trusted_proxies"},
      {"trusted proxy not a string", Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "trusted_proxies": [7]}])"),
       "gateways[0].trusted_proxies"},
      {"postgres not an object", Minimal(R"("postgres": "localhost")"), "postgres"},
      {"redis not an object", Minimal(R"("redis": 6379)"), "redis"},
      {"limits not an object", Minimal(R"("limits": [1, 2])"), "limits"},
      {"limit section not an object", Minimal(R"("limits": {"chat": 5})"), "limits.chat"},
      {"limit above its maximum", Minimal(R"("limits": {"chat": {"send_committers": 65}})"),
       "limits.chat.send_committers"},
      {"unknown limit", Minimal(R"("limits": {"chat": {"max_text_char": 10}})"), "limits.chat.max_text_char"},
      {"limit in the wrong section", Minimal(R"("limits": {"gateway": {"max_text_chars": 10}})"),
       "limits.gateway.max_text_chars"},
      {"unknown limit section", Minimal(R"("limits": {"chats": {}})"), "limits.chats"},
      {"limit outside any section", Minimal(R"("limits": {"max_text_chars": 10})"), "limits.max_text_chars"},
      {"unknown top-level key", Minimal(R"("secrets": "x")"), "secrets"},
      {"unknown postgres key", Minimal(R"("postgres": {"hots": "db"})"), "postgres.hots"},
      {"unknown redis key", Minimal(R"("redis": {"timeout": 5})"), "redis.timeout"},
      {"unknown service", Minimal(R"("gateways": [], "services2": {})"), "services2"},
      {"unknown shard key",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": ["a:4"], "db": "x"}]}})",
       "services.chat[0].db"},
      {"unknown gateway key", Minimal(R"("gateways": [{"id": "a", "listen": "x:1", "port": 1}])"), "gateways[0].port"},
      {"unsupported code sender", Minimal(R"("code_sender": "sms")"), "code_sender"},
      {"no internal_tls",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",)" + shards_with +
           R"([{"addresses": ["a:4"]}]}})",
       "internal_tls"},
      {"redis user without a password", Minimal(R"("redis": {"user": "{kind}"})"), "redis.user"},
      {"redis password twice", Minimal(R"("redis": {"password": "p", "password_file": "/f"})"), "redis.password"},
      {"postgres password twice", Minimal(R"("postgres": {"password": "p", "password_file": "/f"})"),
       "postgres.password"},
      {"unknown internal_tls key", Minimal(R"("internal_tls": {"insecure_plaintext": true, "ca": "x"})"),
       "internal_tls.ca"},
      {"services not an object",
       R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f", "services": []})", "services"},
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

// The operator's documents are checked against the one declaration of the limits.
std::string SourceFile(const std::string& rel) {
  std::ifstream in(std::string(CHAT_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(in) << "cannot read " << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Config, WeakSecretsAreRefusedWithHowToMakeOne) {
  auto with_secret = [](const std::string& s) { return R"({"secret": ")" + s + "\"," + kShards + "}"; };
  const std::string example = ErrorOf(SourceFile("deploy/cluster.example.json"));
  EXPECT_NE(example.find("secret"), std::string::npos) << example;
  EXPECT_NE(example.find("placeholder"), std::string::npos) << example;
  EXPECT_NE(example.find("/dev/urandom"), std::string::npos) << "the error says how to make one: " << example;
  for (const std::string& weak : {std::string(16, '0'), std::string(64, '0'), std::string("0123456789abcdef"),
                                  std::string("0123456789abcdef0123456789abcdef"),  // 32 chars, a pattern
                                  std::string(32, 'a') + std::string(32, 'b'), std::string("short")}) {
    const std::string e = ErrorOf(with_secret(weak));
    EXPECT_NE(e.find("secret"), std::string::npos) << "accepted weak secret " << weak;
  }
  // What deploy/local-cluster makes (32 random bytes in hex) and the e2e clusters' secrets pass.
  for (const std::string& good : {std::string("9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f"),
                                  std::string("e2e-3fa9c1d07b2e48f5a6c3d9e1b7f04a2c"),
                                  std::string("c0ffee13deadbeef9a8b7c6d5e4f3a21")}) {  // 32 hex: 128 bits
    EXPECT_EQ(SecretWeakness(good), "") << good;
    EXPECT_EQ(ErrorOf(with_secret(good)), "") << good;
  }
}

constexpr char kGoodA[] = "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f";
constexpr char kGoodB[] = "3e5d7c9b2f4e6a8c0d1e3f9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a";

std::string WithKeys(const std::string& keys_and_signer) { return "{" + keys_and_signer + "," + kShards + "}"; }
std::string Key(const std::string& id, const std::string& secret, const std::string& extra = "") {
  return R"({"id": ")" + id + R"(", "secret": ")" + secret + "\"" + extra + "}";
}

TEST(Config, TokenKeysListEveryVerifierAndNameTheSigner) {
  ClusterConfig c = ParseConfig(WithKeys(R"("token_keys": [)" + Key("2026-11", kGoodA, R"(, "legacy_v1": true)") + "," +
                                         Key("2026-12", kGoodB) + R"(], "token_signing_key": "2026-12")"));
  ASSERT_EQ(c.token_keys.keys.size(), 2u);
  EXPECT_EQ(c.token_keys.keys[0].id, "2026-11");
  EXPECT_EQ(c.token_keys.keys[0].secret, kGoodA);
  EXPECT_TRUE(c.token_keys.keys[0].legacy_v1);
  EXPECT_EQ(c.token_keys.keys[1].id, "2026-12");
  EXPECT_FALSE(c.token_keys.keys[1].legacy_v1);
  EXPECT_EQ(c.token_keys.signing_key_id, "2026-12");
  // What this config signs, it verifies.
  TokenSigner signer(c.token_keys);
  EXPECT_TRUE(signer.Verify(signer.Issue({42, "d", 2000000000}), 1700000000).has_value());
}

TEST(Config, BadTokenKeysAreRefusedNamingTheKey) {
  const std::string a = Key("a", kGoodA), b = Key("b", kGoodB);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("token_keys": [], "token_signing_key": "a")", "token_keys"},
      {R"("token_keys": {}, "token_signing_key": "a")", "token_keys"},
      {R"("token_keys": [)" + a + "]", "token_signing_key"},
      {R"("token_keys": [)" + a + R"(], "token_signing_key": "b")", "token_signing_key"},
      {R"("token_keys": [)" + a + "," + Key("a", kGoodB) + R"(], "token_signing_key": "a")", "token_keys[1].id"},
      {R"("token_keys": [)" + a + "," + Key("c", kGoodA) + R"(], "token_signing_key": "a")", "token_keys[1].secret"},
      {R"("token_keys": [)" + Key("a.b", kGoodA) + R"(], "token_signing_key": "a.b")", "token_keys[0].id"},
      {R"("token_keys": [)" + Key("", kGoodA) + R"(], "token_signing_key": "")", "token_keys[0].id"},
      {R"("token_keys": [)" + Key("a", "short") + R"(], "token_signing_key": "a")", "token_keys[0].secret"},
      {R"("token_keys": [)" + a + "," + Key("b", kExampleSecret) + R"(], "token_signing_key": "a")",
       "token_keys[1].secret"},
      {R"("token_keys": [)" + a + "," + Key("b", std::string(64, '0')) + R"(], "token_signing_key": "a")",
       "token_keys[1].secret"},
      {R"("token_keys": [)" + Key("a", kGoodA, R"(, "legacy_v1": true)") + "," +
           Key("b", kGoodB, R"(, "legacy_v1": true)") + R"(], "token_signing_key": "a")",
       "token_keys[1].legacy_v1"},
      {R"("token_keys": [)" + Key("a", kGoodA, R"(, "signs": true)") + R"(], "token_signing_key": "a")",
       "token_keys[0].signs"},
      {R"("secret": ")" + std::string(kGoodA) + R"(", "token_keys": [)" + b + R"(], "token_signing_key": "b")",
       "secret"},
  };
  for (const auto& [json, key] : cases) {
    const std::string e = ErrorOf(WithKeys(json));
    EXPECT_NE(e.find(key), std::string::npos) << json << " gave: " << e;
  }
  // Every weak secret says how to make a good one.
  EXPECT_NE(ErrorOf(WithKeys(R"("token_keys": [)" + Key("a", "short") + R"(], "token_signing_key": "a")"))
                .find("/dev/urandom"),
            std::string::npos);
  // Neither form at all.
  EXPECT_NE(ErrorOf(std::string("{") + kShards + "}").find("token_keys"), std::string::npos);
}

TEST(Config, ExampleConfigParsesAndShowsEveryLimitAtItsDefault) {
  // ParseConfig refuses unknown keys, so the example holds nothing the server does not read.
  std::string text = SourceFile("deploy/cluster.example.json");
  // Its placeholder secret is refused (next test); everything else parses as it stands.
  const size_t at = text.find(kExampleSecret);
  ASSERT_NE(at, std::string::npos) << "the example's secret is not the placeholder config.h names";
  text.replace(at, std::string(kExampleSecret).size(), std::string(64, 'a') + "0123456789abcdef");
  ASSERT_NO_THROW(ParseConfig(text));
  const auto limits = boost::json::parse(text).at("limits").as_object();
  size_t shown = 0;
  for (const auto& [section, body] : limits) shown += body.as_object().size();
  EXPECT_EQ(shown, AllLimits().size()) << "the example lists limits that do not exist, or misses some";
  for (const LimitInfo& l : AllLimits()) {
    const auto* sec = limits.if_contains(l.section);
    const auto* v = sec ? sec->as_object().if_contains(l.name) : nullptr;
    ASSERT_TRUE(v) << "deploy/cluster.example.json lacks limits." << l.section << "." << l.name;
    EXPECT_EQ(boost::json::value_to<uint64_t>(*v), l.default_value)
        << "limits." << l.section << "." << l.name << " in the example is not the default";
  }
}

TEST(Config, OperatorGuideDocumentsEveryLimitWithItsDefault) {
  const std::string readme = SourceFile("deploy/README.md");
  for (const LimitInfo& l : AllLimits()) {
    const std::string row =
        "| `limits." + std::string(l.section) + "." + l.name + "` | `" + std::to_string(l.default_value) + "`";
    EXPECT_NE(readme.find(row), std::string::npos) << "deploy/README.md has no row starting " << row;
  }
  // And no row for a limit that does not exist.
  for (size_t at = readme.find("| `limits."); at != std::string::npos; at = readme.find("| `limits.", at + 1)) {
    const size_t end = readme.find('`', at + 3);
    const std::string key = readme.substr(at + 3, end - at - 3);  // limits.<section>.<name>
    bool known = false;
    for (const LimitInfo& l : AllLimits()) known = known || key == "limits." + std::string(l.section) + "." + l.name;
    EXPECT_TRUE(known) << "deploy/README.md documents " << key << ", which is not a limit";
  }
}

// The internal plane is mutual TLS unless a config says, in so many words, that it is plain text.
TEST(Config, InternalTlsNeedsAllThreeFilesOrAnExplicitPlaintextFlag) {
  const std::string base = R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f",
    "services": {"account": [{"addresses": ["a:1"]}], "presence": [{"addresses": ["a:2"]}],
                 "group": [{"addresses": ["a:3"]}], "chat": [{"addresses": ["a:4"]}]})";
  auto with = [&](const std::string& tls) { return base + (tls.empty() ? "" : ", \"internal_tls\": " + tls) + "}"; };

  const std::string missing = ErrorOf(with(""));
  EXPECT_NE(missing.find("internal_tls"), std::string::npos) << missing;
  EXPECT_NE(missing.find("deploy/make-certs"), std::string::npos) << "says how to make certificates: " << missing;
  EXPECT_NE(ErrorOf(with("{}")).find("internal_tls.ca_file"), std::string::npos);
  EXPECT_NE(ErrorOf(with(R"({"ca_file": "ca.crt", "key_file": "k"})")).find("internal_tls.cert_file"),
            std::string::npos);
  EXPECT_NE(ErrorOf(with(R"({"ca_file": "ca.crt", "cert_file": "c"})")).find("internal_tls.key_file"),
            std::string::npos);
  EXPECT_NE(ErrorOf(with(R"({"insecure_plaintext": false})")).find("internal_tls.ca_file"), std::string::npos);
  EXPECT_NE(ErrorOf(with(R"({"insecure_plaintext": "yes"})")).find("internal_tls.insecure_plaintext"),
            std::string::npos);
  EXPECT_NE(ErrorOf(with(R"({"insecure_plaintext": true, "ca_file": "ca.crt"})")).find("insecure_plaintext"),
            std::string::npos)
      << "plain text with certificate files is ambiguous";

  const ClusterConfig tls =
      ParseConfig(with(R"({"ca_file": "/tls/ca.crt", "cert_file": "/tls/{kind}.crt", "key_file": "/tls/{kind}.key"})"));
  EXPECT_FALSE(tls.internal_tls.insecure_plaintext);
  EXPECT_EQ(tls.internal_tls.ca_file, "/tls/ca.crt");
  EXPECT_EQ(tls.internal_tls.cert_file, "/tls/{kind}.crt");
  EXPECT_EQ(tls.internal_tls.key_file, "/tls/{kind}.key");
  EXPECT_TRUE(tls.internal_tls.ca_pem.empty()) << "parsing reads no file";
  EXPECT_TRUE(ParseConfig(with(R"({"insecure_plaintext": true})")).internal_tls.insecure_plaintext);
}

TEST(Config, LoadInternalTlsReadsTheKindsFilesAndNamesAMissingOne) {
  EXPECT_EQ(ExpandKind("/tls/{kind}.crt", "chat-service"), "/tls/chat-service.crt");
  EXPECT_EQ(ExpandKind("/tls/{kind}/{kind}.key", "gateway"), "/tls/gateway/gateway.key");
  EXPECT_EQ(ExpandKind("/tls/ca.crt", "gateway"), "/tls/ca.crt");

  char tmpl[] = "/tmp/chat-config-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir + "/" + name) << text; };
  write("ca.crt", "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n");
  write("gateway.crt", "-----BEGIN CERTIFICATE-----\ngw\n-----END CERTIFICATE-----\n");
  write("gateway.key", "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n");
  write("chat-service.crt", "not a certificate");
  InternalTlsConfig tls;
  tls.ca_file = dir + "/ca.crt";
  tls.cert_file = dir + "/{kind}.crt";
  tls.key_file = dir + "/{kind}.key";

  InternalTlsConfig gw = tls;
  LoadInternalTls(gw, "gateway");
  EXPECT_NE(gw.ca_pem.find("\nca\n"), std::string::npos);
  EXPECT_NE(gw.cert_pem.find("\ngw\n"), std::string::npos);
  EXPECT_NE(gw.key_pem.find("\nk\n"), std::string::npos);

  auto error_of = [](InternalTlsConfig t, const std::string& kind) -> std::string {
    try {
      LoadInternalTls(t, kind);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  const std::string not_pem = error_of(tls, "chat-service");
  EXPECT_NE(not_pem.find(dir + "/chat-service.crt"), std::string::npos) << not_pem;
  EXPECT_NE(not_pem.find("not PEM"), std::string::npos) << not_pem;
  const std::string missing = error_of(tls, "group-service");
  EXPECT_NE(missing.find(dir + "/group-service.crt"), std::string::npos) << missing;

  InternalTlsConfig plain;
  plain.insecure_plaintext = true;
  EXPECT_EQ(error_of(plain, "gateway"), "") << "plain text reads no file";
  std::filesystem::remove_all(dir);
}

// Each kind can log in as its own Redis user and PostgreSQL role, its password read from a file.
TEST(Config, RedisAndPostgresCredentialsAreReadPerKindFromFiles) {
  char tmpl[] = "/tmp/chat-config-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/chat-service.pass") << "s3cret-chat\n";
  std::ofstream(dir + "/empty.pass") << "\n";
  const ClusterConfig c = ParseConfig(Minimal(R"("redis": {"user": "{kind}", "password_file": ")" + dir +
                                              R"(/{kind}.pass"}, "postgres": {"user": "{kind}", "password_file": ")" +
                                              dir + R"(/{kind}.pass"})"));
  RedisConfig redis = c.redis;
  EXPECT_TRUE(redis.password.empty()) << "parsing reads no file";
  LoadRedisAuth(redis, "chat-service");
  EXPECT_EQ(redis.user, "chat-service");
  EXPECT_EQ(redis.password, "s3cret-chat") << "the trailing newline is not part of it";
  PostgresConfig pg = c.postgres;
  LoadPostgresAuth(pg, "chat-service");
  EXPECT_EQ(pg.user, "chat-service");
  EXPECT_EQ(pg.password, "s3cret-chat");

  auto error_of = [](std::function<void()> f) -> std::string {
    try {
      f();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  RedisConfig missing = c.redis;
  const std::string e = error_of([&] { LoadRedisAuth(missing, "gateway"); });
  EXPECT_NE(e.find(dir + "/gateway.pass"), std::string::npos) << e;
  PostgresConfig empty = c.postgres;
  empty.password_file = dir + "/empty.pass";
  EXPECT_NE(error_of([&] { LoadPostgresAuth(empty, "x"); }).find("empty"), std::string::npos);
  std::filesystem::remove_all(dir);
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

// Found by fuzz/config_fuzz.cc (seed fuzz/corpus/config_fuzz/nul_in_password): libpq reads the
// conninfo as a C string, so a password with a NUL was silently cut there.
TEST(Config, StringsWithNulAreRefusedNamingTheKey) {
  EXPECT_NE(ErrorOf(Minimal(R"("postgres": {"password": "a\u0000b"})")).find("postgres.password: must not contain NUL"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Minimal(R"("redis": {"host": "\u0000"})")).find("redis.host: must not contain NUL"),
            std::string::npos);
  const std::string nul_address =
      std::string(R"({"secret": "9f1c3b7a5e2d4c6b8a0f1e3d5c7b9a2e4f6d8c0b1a3e5d7c9b2f4e6a8c0d1e3f", "services":)") +
      R"({"account": [{"addresses": ["127.0.0.1:7001\u0000x"]}]}})";
  EXPECT_NE(ErrorOf(nul_address).find("services.account[0].addresses: must not contain NUL"), std::string::npos)
      << ErrorOf(nul_address);
  EXPECT_EQ(ErrorOf(Minimal(R"("postgres": {"password": "a\u0001b"})")), "");  // other controls are the operator's
}

}  // namespace
}  // namespace chat
