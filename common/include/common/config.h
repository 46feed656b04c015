#pragma once
// The cluster topology and limits: one JSON file shared by every process (deploy/cluster.example.json
// documents every key). Parsed and validated once in main(), then passed down by const reference.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/token.h"

namespace chat {

struct PostgresConfig {
  std::string host = "127.0.0.1";
  int port = 5432;
  // The role; "{kind}" is replaced by the process kind (LoadPostgresAuth), so each service can log
  // in as its own role, allowed only its own databases.
  std::string user = "postgres";
  // Its password: from `password_file` (read by LoadPostgresAuth at start; "{kind}" expanded; a
  // trailing newline dropped) or inline. Never logged.
  std::string password_file;
  std::string password;
  int pool_size = 8;  // connections per service process
  // libpq conninfo for one database of this server.
  std::string ConnInfo(const std::string& database) const;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  int timeout_ms = 2000;
  // ACL user every connection authenticates as (AUTH user password); "" = the default user. "{kind}"
  // is replaced by the process kind (LoadRedisAuth), so each kind can have its own user.
  std::string user;
  // Its password, from `password_file` (read by LoadRedisAuth at start; "{kind}" expanded; a
  // trailing newline dropped) or given inline as `password`. Never logged.
  std::string password_file;
  std::string password;
};

// One shard of a service: the addresses of its replicas and the database it owns.
struct ShardConfig {
  std::vector<std::string> addresses;  // host:port of every replica; gRPC round-robins over them
  std::string database;
  // gRPC target naming every replica, e.g. "ipv4:127.0.0.1:7001,127.0.0.1:7002".
  std::string Target() const;
};

// ---- The internal plane's TLS: "internal_tls" in the config file (deploy/README.md) ----
// Mutual TLS between every process on gRPC. Every server requires a client certificate that chains to
// the CA; every channel presents this process's certificate and checks that the server's names the
// service it called ("chat-service", ...). `cert_file` and `key_file` may contain "{kind}", replaced
// by the process kind (the executable's name: "gateway", "chat-service", ...), so one config file
// serves every process. deploy/make-certs makes a CA and one certificate per kind.
struct InternalTlsConfig {
  // "insecure_plaintext": gRPC in plain text, unauthenticated; development only (logged as a warning).
  // ParseConfig refuses a config that neither sets it nor names all three files.
  bool insecure_plaintext = false;
  std::string ca_file;    // PEM: the CA (or CAs, during a rotation) peers' certificates must chain to
  std::string cert_file;  // PEM: this process's certificate (chain)
  std::string key_file;   // PEM: its private key
  // The PEM texts, read by LoadInternalTls in ServiceMain (never keys of the file). A ClusterConfig
  // that was only parsed has them empty, and MakeChannel/StartServer then refuse to use TLS.
  std::string ca_pem, cert_pem, key_pem;
};

// The path with every "{kind}" replaced by `kind`.
std::string ExpandKind(const std::string& path, const std::string& kind);
// Reads the three files of `tls` (with "{kind}" expanded) into its *_pem fields; nothing when
// insecure_plaintext. Throws std::runtime_error naming the file that cannot be read or is not PEM.
void LoadInternalTls(InternalTlsConfig& tls, const std::string& kind);
// Expands "{kind}" in redis.user and redis.password_file and reads the password file into
// redis.password. Throws std::runtime_error naming the file when it cannot be read or is empty.
void LoadRedisAuth(RedisConfig& redis, const std::string& kind);
// The same for postgres.user and postgres.password_file.
void LoadPostgresAuth(PostgresConfig& pg, const std::string& kind);
// ---- end of the internal plane's TLS ----

struct GatewayConfig {
  std::string id;      // stable name; the Redis delivery channel is "gw.<id>"
  std::string listen;  // host:port for WebSocket clients
  // Balancer addresses (IPs or CIDR blocks, ParseIpRange) whose connections must begin with a PROXY
  // header naming the client; empty: every TCP peer is a client and no PROXY header is accepted.
  std::vector<std::string> trusted_proxies;
};

// Every limit of the cluster, declared once: X(section, type, name, default, min, max).
// The section is the process kind that enforces the limit (others may read it); its JSON key is
// "limits.<section>.<name>", and a value outside [min, max] is refused at start with the key named.
// Everything else is derived from this list: the per-section structs below, the parser and its
// checks, and AllLimits(), against which tests check deploy/cluster.example.json and
// deploy/README.md (where each limit's meaning is documented).
inline constexpr uint64_t kNoMax = UINT64_MAX;  // the type's own maximum
// clang-format off
#define CHAT_LIMITS_COMMON(X) \
  X(common, uint32_t, rpc_deadline_ms, 5000, 1, kNoMax)                /* every internal RPC */ \
  X(common, uint32_t, drain_timeout_ms, 5000, 0, kNoMax)               /* graceful shutdown budget */ \
  X(common, uint32_t, fanout_workers, 2, 1, 64)                        /* event path threads per process */ \
  X(common, uint32_t, outbox_redeliver_after_ms, 3000, 100, 3600000)   /* outbox: relay what is unacked */ \
  X(common, uint32_t, outbox_poll_ms, 1000, 10, 60000)                 /* outbox: relay look interval */ \
  X(common, uint32_t, user_quota_timeout_ms, 200, 1, 10000)            /* Redis round trip of a quota */
#define CHAT_LIMITS_GATEWAY(X) \
  X(gateway, uint32_t, max_frame_bytes, 64 * 1024, 256, kNoMax)        /* largest client message */ \
  X(gateway, uint32_t, send_queue_max_frames, 1024, 1, kNoMax)         /* per session, then close 4008 */ \
  X(gateway, uint32_t, send_queue_max_bytes, 4 * 1024 * 1024, 0, kNoMax) \
  X(gateway, uint32_t, handshake_timeout_ms, 10000, 0, kNoMax)         /* TCP accept -> upgrade done */ \
  X(gateway, uint32_t, auth_timeout_ms, 15000, 0, kNoMax)              /* upgrade -> authenticated */ \
  X(gateway, uint32_t, account_check_cache_ttl_ms, 60000, 0, 86400000) /* account confirmed: not re-asked */ \
  X(gateway, uint32_t, account_check_cache_max_entries, 100000, 0, 10000000) /* confirmed accounts kept */ \
  X(gateway, uint32_t, idle_timeout_ms, 240000, 0, kNoMax)             /* ping after half of it */ \
  X(gateway, uint32_t, max_connections, 18000, 0, kNoMax)              /* per process (file limit 20000) */ \
  X(gateway, uint32_t, max_connections_per_ip, 4096, 0, kNoMax)        /* concurrent, per address */ \
  X(gateway, uint32_t, new_connections_per_ip_per_second, 200, 0, kNoMax) \
  X(gateway, uint32_t, new_connections_per_ip_burst, 2000, 0, kNoMax) \
  X(gateway, uint32_t, ip_limit_v6_prefix_bits, 64, 32, 128)         /* an IPv6 client is its /64 */ \
  X(gateway, uint32_t, requests_per_second, 50, 0, kNoMax)             /* per session, bucket refill */ \
  X(gateway, uint32_t, request_burst, 200, 0, kNoMax)                  /* per session, bucket size */ \
  X(gateway, uint32_t, max_inflight_requests, 64, 0, kNoMax)           /* per session */ \
  X(gateway, uint32_t, send_calls_per_shard, 4, 1, 1024)               /* SendBatch calls in flight */ \
  X(gateway, uint32_t, send_queue_max_wait_ms, 1000, 1, kNoMax)        /* longest wait for such a call */ \
  X(gateway, uint32_t, code_requests_per_connection, 3, 0, kNoMax)     /* request_code frames; 0 = off */ \
  X(gateway, uint32_t, code_checks_per_connection, 10, 0, kNoMax)      /* sign_up + log_in frames; 0 = off */
#define CHAT_LIMITS_CHAT(X) \
  X(chat, uint32_t, max_text_chars, 4000, 0, kNoMax) \
  X(chat, uint32_t, max_client_msg_id_chars, 64, 0, kNoMax) \
  X(chat, uint32_t, history_page_max, 200, 1, kNoMax) \
  X(chat, uint32_t, history_page_default, 50, 0, kNoMax) \
  X(chat, uint32_t, send_batch_max, 256, 0, kNoMax)                    /* sends in one commit / call */ \
  X(chat, uint32_t, send_committers, 1, 1, 64)                         /* threads committing batches */ \
  X(chat, uint32_t, friend_cache_ttl_ms, 60000, 0, 3600 * 1000)        /* positive answers only */ \
  X(chat, uint32_t, send_queue_max, 10000, 0, kNoMax)                  /* sends waiting for a commit */ \
  X(chat, uint32_t, user_messages_per_second, 20, 0, kNoMax)           /* per user, cluster-wide; 0 = off */ \
  X(chat, uint32_t, user_messages_per_minute, 300, 0, kNoMax)          /* per user, cluster-wide; 0 = off */ \
  X(chat, uint32_t, user_history_bytes_per_minute, 1024 * 1024, 0, kNoMax) /* stored content, per user */
#define CHAT_LIMITS_GROUP(X) \
  X(group, uint32_t, max_group_members, 500, 0, kNoMax) \
  X(group, uint32_t, max_group_name_chars, 64, 0, kNoMax) \
  X(group, uint32_t, user_groups_created_per_day, 50, 0, kNoMax)       /* per user, cluster-wide; 0 = off */ \
  X(group, uint32_t, user_invitations_per_day, 500, 0, kNoMax)         /* members added, per user; 0 = off */ \
  X(group, uint32_t, max_group_admins, 3, 0, kNoMax)                   /* besides the owner */ \
  X(group, uint32_t, invite_code_ttl_s, 7 * 24 * 3600, 1, kNoMax)      /* each code from its making */ \
  X(group, uint32_t, invite_code_max_members, 100, 0, kNoMax)          /* codes admit below this size */ \
  X(group, uint32_t, invite_preview_names, 5, 0, 50)                   /* member names a code preview shows */ \
  X(group, uint32_t, user_invite_codes_per_day, 20, 0, kNoMax)         /* codes made, per user; 0 = off */ \
  X(group, uint32_t, user_invite_code_uses_per_hour, 30, 0, kNoMax)    /* previews + joins, per user; 0 = off */ \
  X(group, uint32_t, invitee_accepts_from_members, 100, 0, kNoMax)     /* from this size invitees must accept */ \
  X(group, uint32_t, group_invitation_ttl_s, 7 * 24 * 3600, 1, kNoMax) /* invitations and approval requests */
#define CHAT_LIMITS_ACCOUNT(X) \
  X(account, uint32_t, code_ttl_s, 300, 0, kNoMax) \
  X(account, uint32_t, code_max_tries, 5, 0, kNoMax) \
  X(account, uint32_t, code_resend_interval_s, 30, 0, kNoMax) \
  X(account, uint32_t, max_codes_per_phone_per_day, 10, 0, kNoMax)     /* per 24 h window */ \
  X(account, uint32_t, max_codes_per_shard_per_minute, 600, 0, kNoMax) /* per replica (SMS budget) */ \
  X(account, uint32_t, address_codes_per_hour, 20, 0, kNoMax)          /* per client address, all phones; 0 = off */ \
  X(account, uint32_t, address_phone_codes_per_day, 3, 0, kNoMax)      /* per client address and phone; 0 = off */ \
  X(account, uint32_t, address_code_checks_per_hour, 30, 0, kNoMax)    /* sign_up/log_in per address; 0 = off */ \
  X(account, uint32_t, address_phone_code_checks_per_day, 10, 0, kNoMax) /* per address and phone; 0 = off */ \
  X(account, uint64_t, token_ttl_s, 30ull * 24 * 3600, 0, kNoMax) \
  X(account, uint32_t, max_devices_per_user, 20, 1, 1000)              /* sessions; then the idlest ends */ \
  X(account, uint32_t, max_device_name_chars, 64, 0, 1000)             /* device_name and platform */ \
  X(account, uint32_t, deleted_phone_reuse_after_s, 30u * 24 * 3600, 0, kNoMax) /* deleted account's phone */ \
  X(account, uint32_t, handle_change_interval_s, 365u * 24 * 3600, 0, kNoMax) /* a user sets a handle once per */ \
  X(account, uint32_t, handle_hold_s, 90u * 24 * 3600, 0, kNoMax)       /* a released handle is nobody else's */ \
  X(account, uint32_t, max_display_name_chars, 32, 0, kNoMax) \
  X(account, uint32_t, max_greeting_chars, 50, 0, kNoMax) \
  X(account, uint32_t, max_remark_chars, 32, 0, kNoMax) \
  X(account, uint32_t, max_labels_per_user, 100, 0, kNoMax) \
  X(account, uint32_t, max_label_name_chars, 20, 1, kNoMax) \
  X(account, uint32_t, max_whats_up_chars, 30, 0, kNoMax) \
  X(account, uint32_t, user_phone_lookups_per_day, 20, 0, kNoMax)     /* per searching user; 0 = off */ \
  X(account, uint32_t, user_profile_changes_per_day, 50, 0, kNoMax)   /* set_profile, set_display_name; 0 = off */ \
  X(account, uint32_t, max_friends, 5000, 0, kNoMax) \
  X(account, uint32_t, friend_request_ttl_s, 30 * 24 * 3600, 0, kNoMax) \
  X(account, uint32_t, user_friend_requests_per_day, 100, 0, kNoMax)   /* per user, cluster-wide; 0 = off */ \
  X(account, uint32_t, friend_request_renotify_s, 3600, 0, kNoMax)     /* re-sent request: event at most */
#define CHAT_LIMITS_PRESENCE(X) \
  X(presence, uint32_t, presence_ttl_ms, 30000, 300, kNoMax)           /* gateway lease; heartbeat ttl/3 */ \
  X(presence, uint32_t, max_sessions_per_user, 20, 0, 10000)           /* cluster-wide; then close 4010 */
#define CHAT_ALL_LIMITS(X) \
  CHAT_LIMITS_COMMON(X) CHAT_LIMITS_GATEWAY(X) CHAT_LIMITS_CHAT(X) CHAT_LIMITS_GROUP(X) CHAT_LIMITS_ACCOUNT(X) \
  CHAT_LIMITS_PRESENCE(X)
// clang-format on

#define CHAT_LIMIT_FIELD(section, type, name, def, lo, hi) type name = def;
struct CommonLimits {
  CHAT_LIMITS_COMMON(CHAT_LIMIT_FIELD)
};
struct GatewayLimits {
  CHAT_LIMITS_GATEWAY(CHAT_LIMIT_FIELD)
};
struct ChatLimits {
  CHAT_LIMITS_CHAT(CHAT_LIMIT_FIELD)
};
struct GroupLimits {
  CHAT_LIMITS_GROUP(CHAT_LIMIT_FIELD)
};
struct AccountLimits {
  CHAT_LIMITS_ACCOUNT(CHAT_LIMIT_FIELD)
};
struct PresenceLimits {
  CHAT_LIMITS_PRESENCE(CHAT_LIMIT_FIELD)
};
#undef CHAT_LIMIT_FIELD

// Every limit the cluster enforces, by section ("limits.<section>" in the config file).
struct Limits {
  CommonLimits common;
  GatewayLimits gateway;
  ChatLimits chat;
  GroupLimits group;
  AccountLimits account;
  PresenceLimits presence;
};

// One row of the declaration above, for tools and tests.
struct LimitInfo {
  const char* section;
  const char* name;
  uint64_t default_value;
  uint64_t min;
  uint64_t max;  // already the type's maximum where the declaration says kNoMax
};
const std::vector<LimitInfo>& AllLimits();

struct ClusterConfig {
  // Token keys (every one verifies, one signs) and the key of phone-code hashes (the signing one).
  // The file gives either "token_keys" + "token_signing_key" or the one-key shorthand "secret".
  TokenKeys token_keys;
  std::string run_dir = "/tmp/chat-cluster";  // dev code sender file, pid files, logs
  std::string log_level = "info";
  std::string code_sender = "file";  // "file": codes appended to <run_dir>/codes.log
  PostgresConfig postgres;
  RedisConfig redis;
  InternalTlsConfig internal_tls;
  std::vector<ShardConfig> account;
  std::vector<ShardConfig> presence;
  std::vector<ShardConfig> chat;
  std::vector<ShardConfig> group;
  std::vector<GatewayConfig> gateways;
  Limits limits;
};

// Parses and validates. Throws std::runtime_error naming the bad key.
ClusterConfig LoadConfig(const std::string& path);

// The id the one-key shorthand "secret": S stands for: token_keys [{"id": kSecretKeyId, "secret": S,
// "legacy_v1": true}], token_signing_key kSecretKeyId.
inline constexpr const char* kSecretKeyId = "default";
// At most this many token keys (a rotation needs two; three leave room for an emergency).
inline constexpr size_t kMaxTokenKeys = 8;
// The placeholder secret of deploy/cluster.example.json: refused, so the example cannot go live.
inline constexpr const char* kExampleSecret = "replace-with-64-hex-chars-from-od-An-tx1-N32-dev-urandom-000000";
// Why `secret` may not sign tokens ("" when it may): the example's placeholder, under 32 characters,
// one character repeated, or under an estimated 128 bits of entropy. ParseConfig refuses such a
// config, naming the reason and how to make a good secret.
std::string SecretWeakness(const std::string& secret);
ClusterConfig ParseConfig(const std::string& json_text);

}  // namespace chat
