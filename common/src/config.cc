#include "common/config.h"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chat {
namespace json = boost::json;

namespace {
// A libpq conninfo value: as is when plain, else single-quoted with \ and ' escaped.
std::string ConnValue(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) plain = plain && c != ' ' && c != '\'' && c != '\\' && c != '\t' && c != '\n' && c != '=';
  if (plain) return v;
  std::string q = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') q += '\\';
    q += c;
  }
  return q + "'";
}
}  // namespace

std::string PostgresConfig::ConnInfo(const std::string& database) const {
  std::string s = "host=" + ConnValue(host) + " port=" + std::to_string(port) + " user=" + ConnValue(user) +
                  " dbname=" + ConnValue(database) + " connect_timeout=5";
  if (!password.empty()) s += " password=" + ConnValue(password);
  return s;
}

std::string ShardConfig::Target() const {
  std::string t = "ipv4:";
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (i) t += ",";
    t += addresses[i];
  }
  return t;
}

namespace {

[[noreturn]] void Bad(const std::string& key, const std::string& why) {
  throw std::runtime_error("config: " + key + ": " + why);
}

template <typename T>
void Get(const json::object& o, const char* key, T& out, const std::string& path) {
  auto* v = o.if_contains(key);
  if (!v) return;
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      out = std::string(v->as_string());
    } else if constexpr (std::is_same_v<T, bool>) {
      out = v->as_bool();
    } else {
      out = json::value_to<T>(*v);
    }
  } catch (const std::exception&) {
    Bad(path + key, "wrong type");
  }
}

std::vector<ShardConfig> Shards(const json::object& o, const char* key) {
  std::vector<ShardConfig> out;
  auto* v = o.if_contains(key);
  if (!v) return out;
  if (!v->is_array()) Bad(std::string("services.") + key, "must be an array of shards");
  int i = 0;
  for (const auto& s : v->as_array()) {
    std::string path = std::string("services.") + key + "[" + std::to_string(i++) + "].";
    if (!s.is_object()) Bad(path, "must be an object");
    ShardConfig shard;
    const auto& so = s.as_object();
    if (auto* a = so.if_contains("addresses")) {
      if (!a->is_array()) Bad(path + "addresses", "must be an array");
      for (const auto& addr : a->as_array()) {
        if (!addr.is_string()) Bad(path + "addresses", "must hold host:port strings");
        shard.addresses.emplace_back(addr.as_string());
      }
    }
    Get(so, "database", shard.database, path);
    if (shard.addresses.empty()) Bad(path + "addresses", "at least one replica address required");
    out.push_back(std::move(shard));
  }
  return out;
}

}  // namespace

ClusterConfig ParseConfig(const std::string& text) {
  json::value root;
  try {
    root = json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("config: not valid JSON: ") + e.what());
  }
  if (!root.is_object()) Bad("(root)", "must be an object");
  const auto& o = root.as_object();
  for (const char* section : {"postgres", "redis", "services", "limits"})
    if (auto* v = o.if_contains(section); v && !v->is_object()) Bad(section, "must be an object");
  ClusterConfig c;
  Get(o, "secret", c.secret, "");
  Get(o, "run_dir", c.run_dir, "");
  Get(o, "log_level", c.log_level, "");
  Get(o, "code_sender", c.code_sender, "");
  if (auto* pg = o.if_contains("postgres"); pg && pg->is_object()) {
    const auto& p = pg->as_object();
    Get(p, "host", c.postgres.host, "postgres.");
    Get(p, "port", c.postgres.port, "postgres.");
    Get(p, "user", c.postgres.user, "postgres.");
    Get(p, "password", c.postgres.password, "postgres.");
    Get(p, "pool_size", c.postgres.pool_size, "postgres.");
  }
  if (auto* r = o.if_contains("redis"); r && r->is_object()) {
    const auto& p = r->as_object();
    Get(p, "host", c.redis.host, "redis.");
    Get(p, "port", c.redis.port, "redis.");
    Get(p, "timeout_ms", c.redis.timeout_ms, "redis.");
  }
  if (auto* s = o.if_contains("services"); s && s->is_object()) {
    const auto& so = s->as_object();
    c.account = Shards(so, "account");
    c.presence = Shards(so, "presence");
    c.chat = Shards(so, "chat");
    c.group = Shards(so, "group");
  }
  if (auto* g = o.if_contains("gateways"); g) {
    if (!g->is_array()) Bad("gateways", "must be an array");
    int i = 0;
    for (const auto& gw : g->as_array()) {
      std::string path = "gateways[" + std::to_string(i++) + "].";
      if (!gw.is_object()) Bad(path, "must be an object");
      GatewayConfig gc;
      Get(gw.as_object(), "id", gc.id, path);
      Get(gw.as_object(), "listen", gc.listen, path);
      if (gc.id.empty() || gc.listen.empty()) Bad(path, "id and listen are required");
      c.gateways.push_back(gc);
    }
  }
  if (auto* l = o.if_contains("limits"); l && l->is_object()) {
    const auto& lo = l->as_object();
    auto& L = c.limits;
    const std::string p = "limits.";
#define LIMIT(name) Get(lo, #name, L.name, p)
    LIMIT(max_frame_bytes);
    LIMIT(send_queue_max_frames);
    LIMIT(send_queue_max_bytes);
    LIMIT(handshake_timeout_ms);
    LIMIT(auth_timeout_ms);
    LIMIT(idle_timeout_ms);
    LIMIT(drain_timeout_ms);
    LIMIT(max_connections);
    LIMIT(max_connections_per_ip);
    LIMIT(new_connections_per_ip_per_second);
    LIMIT(new_connections_per_ip_burst);
    LIMIT(requests_per_second);
    LIMIT(request_burst);
    LIMIT(max_inflight_requests);
    LIMIT(rpc_deadline_ms);
    LIMIT(max_text_chars);
    LIMIT(max_client_msg_id_chars);
    LIMIT(history_page_max);
    LIMIT(history_page_default);
    LIMIT(send_batch_max);
    LIMIT(send_committers);
    LIMIT(send_queue_max);
    LIMIT(friend_cache_ttl_ms);
    LIMIT(send_calls_per_shard);
    LIMIT(send_queue_max_wait_ms);
    LIMIT(max_group_members);
    LIMIT(max_group_name_chars);
    LIMIT(invite_code_member_limit);
    LIMIT(code_ttl_s);
    LIMIT(code_max_tries);
    LIMIT(code_resend_interval_s);
    LIMIT(token_ttl_s);
    LIMIT(max_display_name_chars);
    LIMIT(max_greeting_chars);
    LIMIT(max_friends);
    LIMIT(friend_request_ttl_s);
    LIMIT(presence_ttl_ms);
    LIMIT(max_codes_per_phone_per_day);
    LIMIT(max_code_failures_per_phone_per_day);
    LIMIT(max_codes_per_shard_per_minute);
#undef LIMIT
  }
  if (c.secret.size() < 16) Bad("secret", "must be at least 16 characters");
  if (c.code_sender != "file") Bad("code_sender", "unsupported \"" + c.code_sender + "\" (supported: file)");
  if (c.account.empty()) Bad("services.account", "at least one shard required");
  if (c.presence.empty()) Bad("services.presence", "at least one shard required");
  if (c.chat.empty()) Bad("services.chat", "at least one shard required");
  if (c.group.empty()) Bad("services.group", "at least one shard required");
  if (c.limits.max_frame_bytes < 256) Bad("limits.max_frame_bytes", "must be >= 256");
  if (c.limits.send_queue_max_frames == 0) Bad("limits.send_queue_max_frames", "must be > 0");
  if (c.limits.history_page_max == 0) Bad("limits.history_page_max", "must be > 0");
  if (c.limits.send_committers == 0 || c.limits.send_committers > 64) Bad("limits.send_committers", "must be 1..64");
  if (c.limits.send_calls_per_shard == 0 || c.limits.send_calls_per_shard > 1024)
    Bad("limits.send_calls_per_shard", "must be 1..1024");
  if (c.limits.send_queue_max_wait_ms == 0) Bad("limits.send_queue_max_wait_ms", "must be > 0");
  if (c.limits.friend_cache_ttl_ms > 3600 * 1000)
    Bad("limits.friend_cache_ttl_ms", "must be at most 3600000 (one hour)");
  if (c.limits.rpc_deadline_ms == 0) Bad("limits.rpc_deadline_ms", "must be > 0");
  if (c.limits.presence_ttl_ms < 300) Bad("limits.presence_ttl_ms", "must be >= 300");
  return c;
}

ClusterConfig LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("config: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

}  // namespace chat
