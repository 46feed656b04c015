#pragma once
// The cluster topology and limits: one JSON file shared by every process (deploy/cluster.example.json
// documents every key). Parsed and validated once in main(), then passed down by const reference.
#include <cstdint>
#include <string>
#include <vector>

namespace chat {

struct PostgresConfig {
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string user = "postgres";
  std::string password;
  int pool_size = 8;  // connections per service process
  // libpq conninfo for one database of this server.
  std::string ConnInfo(const std::string& database) const;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  int timeout_ms = 2000;
};

// One shard of a service: the addresses of its replicas and the database it owns.
struct ShardConfig {
  std::vector<std::string> addresses;  // host:port of every replica; gRPC round-robins over them
  std::string database;
  // gRPC target naming every replica, e.g. "ipv4:127.0.0.1:7001,127.0.0.1:7002".
  std::string Target() const;
};

struct GatewayConfig {
  std::string id;      // stable name; the Redis delivery channel is "gw.<id>"
  std::string listen;  // host:port for WebSocket clients
};

// Every limit the cluster enforces. Defaults are the documented product values.
struct Limits {
  // WebSocket / gateway
  uint32_t max_frame_bytes = 64 * 1024;   // largest client message accepted
  uint32_t send_queue_max_frames = 1024;  // per session; beyond it the client is disconnected
  uint32_t send_queue_max_bytes = 4 * 1024 * 1024;
  uint32_t handshake_timeout_ms = 10000;             // TCP accept -> upgrade complete
  uint32_t auth_timeout_ms = 15000;                  // upgrade -> authenticated, else close 4001
  uint32_t idle_timeout_ms = 240000;                 // ping after half of it in silence; close after all of it
  uint32_t drain_timeout_ms = 5000;                  // graceful shutdown budget
  uint32_t max_connections = 18000;                  // per gateway process (file limit is 20000)
  uint32_t max_connections_per_ip = 4096;            // concurrent, per client address (carrier NAT is big)
  uint32_t new_connections_per_ip_per_second = 200;  // token bucket refill, per client address
  uint32_t new_connections_per_ip_burst = 2000;      // token bucket size, per client address
  uint32_t requests_per_second = 50;                 // per session, token bucket refill rate
  uint32_t request_burst = 200;                      // per session, token bucket size
  uint32_t max_inflight_requests = 64;               // per session, requests awaiting a reply
  // RPC
  uint32_t rpc_deadline_ms = 5000;
  // Chat
  uint32_t max_text_chars = 4000;
  uint32_t max_client_msg_id_chars = 64;
  uint32_t history_page_max = 200;
  uint32_t history_page_default = 50;
  uint32_t send_batch_max = 256;           // sends grouped into one commit
  uint32_t send_committers = 1;            // chat-service threads committing send batches concurrently
  uint32_t friend_cache_ttl_ms = 60000;    // chat-service remembers "these two are friends" this long
  uint32_t send_calls_per_shard = 4;       // gateway: SendBatch calls in flight per chat shard
  uint32_t send_queue_max_wait_ms = 1000;  // gateway: longest wait of a send for such a call; beyond
                                           // it sends are refused with RESOURCE_EXHAUSTED
  uint32_t send_queue_max = 10000;         // sends waiting for a commit, per chat process; beyond it
                                           // send_message fails fast with RESOURCE_EXHAUSTED
  // Groups
  uint32_t max_group_members = 500;
  uint32_t max_group_name_chars = 64;
  uint32_t invite_code_member_limit = 100;
  // Accounts
  uint32_t code_ttl_s = 300;
  uint32_t code_max_tries = 5;
  uint32_t code_resend_interval_s = 30;
  uint32_t max_codes_per_phone_per_day = 10;          // codes sent to one phone per 24 h window
  uint32_t max_code_failures_per_phone_per_day = 20;  // wrong codes for one phone per 24 h, across codes
  uint32_t max_codes_per_shard_per_minute = 600;      // token bucket per account replica (SMS budget)
  uint64_t token_ttl_s = 30ull * 24 * 3600;
  uint32_t max_display_name_chars = 32;
  uint32_t max_greeting_chars = 50;
  uint32_t max_friends = 5000;
  uint32_t friend_request_ttl_s = 30 * 24 * 3600;
  // Presence
  uint32_t presence_ttl_ms = 30000;  // gateway lease; heartbeats every ttl/3
};

struct ClusterConfig {
  std::string secret;                         // HMAC key for tokens; must be set (>= 16 chars)
  std::string run_dir = "/tmp/chat-cluster";  // dev code sender file, pid files, logs
  std::string log_level = "info";
  std::string code_sender = "file";  // "file": codes appended to <run_dir>/codes.log
  PostgresConfig postgres;
  RedisConfig redis;
  std::vector<ShardConfig> account;
  std::vector<ShardConfig> presence;
  std::vector<ShardConfig> chat;
  std::vector<ShardConfig> group;
  std::vector<GatewayConfig> gateways;
  Limits limits;
};

// Parses and validates. Throws std::runtime_error naming the bad key.
ClusterConfig LoadConfig(const std::string& path);
ClusterConfig ParseConfig(const std::string& json_text);

}  // namespace chat
