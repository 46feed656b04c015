#include "common/config.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "common/ip_range.h"

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

// Refuses any key of `o` that is not in `known` (a typo would otherwise silently keep a default).
void OnlyKeys(const json::object& o, const std::string& path, std::initializer_list<std::string_view> known) {
  for (const auto& kv : o) {
    bool ok = false;
    for (auto k : known) ok = ok || kv.key() == k;
    if (!ok) Bad(path + std::string(kv.key()), "unknown key");
  }
}

// JSON allows "\u0000" in a string, but what reads config strings (libpq's conninfo, gRPC targets,
// file paths) stops at a NUL: the value would silently be cut there.
void NoNul(std::string_view value, const std::string& key) {
  if (value.find('\0') != std::string_view::npos) Bad(key, "must not contain NUL (\\u0000)");
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
  if constexpr (std::is_same_v<T, std::string>) NoNul(out, path + key);
}

// A limit: a non-negative integer that fits its type, within the declared [min, max].
template <typename T>
void GetLimit(const json::object& o, const char* key, T& out, const std::string& path, uint64_t min, uint64_t max) {
  auto* v = o.if_contains(key);
  if (!v) return;
  uint64_t n = 0;
  try {
    n = json::value_to<uint64_t>(*v);
  } catch (const std::exception&) {
    Bad(path + key, "must be a non-negative integer");
  }
  max = std::min<uint64_t>(max, std::numeric_limits<T>::max());
  if (n < min || n > max)
    Bad(path + key, max == std::numeric_limits<T>::max()
                        ? "must be >= " + std::to_string(min)
                        : "must be " + std::to_string(min) + ".." + std::to_string(max));
  out = static_cast<T>(n);
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
    OnlyKeys(so, path, {"addresses", "database"});
    if (auto* a = so.if_contains("addresses")) {
      if (!a->is_array()) Bad(path + "addresses", "must be an array");
      for (const auto& addr : a->as_array()) {
        if (!addr.is_string()) Bad(path + "addresses", "must hold host:port strings");
        shard.addresses.emplace_back(addr.as_string());
        NoNul(shard.addresses.back(), path + "addresses");
      }
    }
    Get(so, "database", shard.database, path);
    if (shard.addresses.empty()) Bad(path + "addresses", "at least one replica address required");
    out.push_back(std::move(shard));
  }
  return out;
}

// The object at o[key], if present; refuses anything else.
const json::object* Section(const json::object& o, const char* key, const std::string& path) {
  auto* v = o.if_contains(key);
  if (!v) return nullptr;
  if (!v->is_object()) Bad(path + key, "must be an object");
  return &v->as_object();
}

// ---- The internal plane's TLS ----
void ParseInternalTls(const json::object* t, InternalTlsConfig& tls) {
  const char* kHow =
      "required: ca_file, cert_file and key_file (deploy/make-certs makes them), or insecure_plaintext: true "
      "(development only)";
  if (!t) Bad("internal_tls", kHow);
  OnlyKeys(*t, "internal_tls.", {"insecure_plaintext", "ca_file", "cert_file", "key_file"});
  Get(*t, "insecure_plaintext", tls.insecure_plaintext, "internal_tls.");
  Get(*t, "ca_file", tls.ca_file, "internal_tls.");
  Get(*t, "cert_file", tls.cert_file, "internal_tls.");
  Get(*t, "key_file", tls.key_file, "internal_tls.");
  const bool any_file = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty();
  if (tls.insecure_plaintext && any_file)
    Bad("internal_tls.insecure_plaintext", "cannot be combined with ca_file, cert_file or key_file");
  if (!tls.insecure_plaintext) {
    if (tls.ca_file.empty()) Bad("internal_tls.ca_file", kHow);
    if (tls.cert_file.empty()) Bad("internal_tls.cert_file", kHow);
    if (tls.key_file.empty()) Bad("internal_tls.key_file", kHow);
  }
}

std::string ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("internal_tls: cannot read " + std::string(what) + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN ") == std::string::npos)
    throw std::runtime_error("internal_tls: " + std::string(what) + " " + path + " is not PEM");
  return pem;
}
// ---- end of the internal plane's TLS ----

void ParseLimits(const json::object& lo, Limits& L) {
  OnlyKeys(lo, "limits.", {"common", "gateway", "chat", "group", "account", "presence"});
#define CHAT_LIMIT_KEY(section, type, name, def, lo, hi) #name,
#define CHAT_LIMIT_GET(section, type, name, def, lo, hi) GetLimit(*o, #name, L.section.name, path, lo, hi);
#define CHAT_LIMIT_SECTION(section, LIST)                         \
  if (const json::object* o = Section(lo, #section, "limits.")) { \
    const std::string path = "limits." #section ".";              \
    OnlyKeys(*o, path, {LIST(CHAT_LIMIT_KEY)});                   \
    LIST(CHAT_LIMIT_GET)                                          \
  }
  CHAT_LIMIT_SECTION(common, CHAT_LIMITS_COMMON)
  CHAT_LIMIT_SECTION(gateway, CHAT_LIMITS_GATEWAY)
  CHAT_LIMIT_SECTION(chat, CHAT_LIMITS_CHAT)
  CHAT_LIMIT_SECTION(group, CHAT_LIMITS_GROUP)
  CHAT_LIMIT_SECTION(account, CHAT_LIMITS_ACCOUNT)
  CHAT_LIMIT_SECTION(presence, CHAT_LIMITS_PRESENCE)
#undef CHAT_LIMIT_SECTION
#undef CHAT_LIMIT_GET
#undef CHAT_LIMIT_KEY
}

}  // namespace

const std::vector<LimitInfo>& AllLimits() {
#define CHAT_LIMIT_INFO(section, type, name, def, lo, hi) \
  LimitInfo{#section, #name, static_cast<uint64_t>(def), lo, std::min<uint64_t>(hi, std::numeric_limits<type>::max())},
  static const std::vector<LimitInfo> all{CHAT_ALL_LIMITS(CHAT_LIMIT_INFO)};
#undef CHAT_LIMIT_INFO
  return all;
}

namespace {

constexpr char kHowToMakeASecret[] = "make one with: od -An -tx1 -N32 /dev/urandom | tr -d ' \\n'";

void CheckSecret(const std::string& key, const std::string& secret) {
  if (std::string why = SecretWeakness(secret); !why.empty()) Bad(key, why + "; " + kHowToMakeASecret);
}

// "token_keys" + "token_signing_key", or the shorthand "secret" (one key that also verifies v1).
TokenKeys ParseTokenKeys(const json::object& o) {
  TokenKeys k;
  const bool has_secret = o.contains("secret");
  if (has_secret && (o.contains("token_keys") || o.contains("token_signing_key")))
    Bad("secret", "give either \"secret\" (one key) or \"token_keys\" and \"token_signing_key\", not both");
  if (has_secret) {
    std::string secret;
    Get(o, "secret", secret, "");
    CheckSecret("secret", secret);
    return TokenKeys::Single(kSecretKeyId, std::move(secret));
  }
  const json::value* v = o.if_contains("token_keys");
  if (!v) Bad("token_keys", "required (or the one-key shorthand \"secret\"); " + std::string(kHowToMakeASecret));
  if (!v->is_array() || v->as_array().empty()) Bad("token_keys", "must be a non-empty array of {id, secret}");
  if (v->as_array().size() > kMaxTokenKeys) Bad("token_keys", "at most " + std::to_string(kMaxTokenKeys) + " keys");
  int i = 0;
  for (const auto& e : v->as_array()) {
    const std::string path = "token_keys[" + std::to_string(i++) + "].";
    if (!e.is_object()) Bad(path, "must be an object {id, secret}");
    OnlyKeys(e.as_object(), path, {"id", "secret", "legacy_v1"});
    TokenKey key;
    Get(e.as_object(), "id", key.id, path);
    Get(e.as_object(), "secret", key.secret, path);
    Get(e.as_object(), "legacy_v1", key.legacy_v1, path);
    if (!ValidTokenKeyId(key.id)) Bad(path + "id", "must be 1-32 characters of A-Z a-z 0-9 _ -");
    if (k.Find(key.id)) Bad(path + "id", "\"" + key.id + "\" is given twice");
    CheckSecret(path + "secret", key.secret);
    for (const auto& other : k.keys)
      if (other.secret == key.secret) Bad(path + "secret", "is the secret of key \"" + other.id + "\" too");
    if (key.legacy_v1)
      for (const auto& other : k.keys)
        if (other.legacy_v1) Bad(path + "legacy_v1", "only one key may verify v1 tokens");
    k.keys.push_back(std::move(key));
  }
  Get(o, "token_signing_key", k.signing_key_id, "");
  if (k.signing_key_id.empty()) Bad("token_signing_key", "required: the id of the key that signs new tokens");
  if (!k.Find(k.signing_key_id)) Bad("token_signing_key", "\"" + k.signing_key_id + "\" is not in token_keys");
  return k;
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
  OnlyKeys(o, "",
           {"secret", "token_keys", "token_signing_key", "run_dir", "log_level", "code_sender", "postgres", "redis",
            "internal_tls", "services", "gateways", "limits"});
  ClusterConfig c;
  c.token_keys = ParseTokenKeys(o);
  Get(o, "run_dir", c.run_dir, "");
  Get(o, "log_level", c.log_level, "");
  Get(o, "code_sender", c.code_sender, "");
  if (const json::object* p = Section(o, "postgres", "")) {
    OnlyKeys(*p, "postgres.", {"host", "port", "user", "password_file", "password", "pool_size"});
    Get(*p, "host", c.postgres.host, "postgres.");
    Get(*p, "port", c.postgres.port, "postgres.");
    Get(*p, "user", c.postgres.user, "postgres.");
    Get(*p, "password_file", c.postgres.password_file, "postgres.");
    Get(*p, "password", c.postgres.password, "postgres.");
    if (!c.postgres.password_file.empty() && !c.postgres.password.empty())
      Bad("postgres.password", "give password_file or password, not both");
    Get(*p, "pool_size", c.postgres.pool_size, "postgres.");
  }
  if (const json::object* r = Section(o, "redis", "")) {
    OnlyKeys(*r, "redis.", {"host", "port", "timeout_ms", "user", "password_file", "password"});
    Get(*r, "host", c.redis.host, "redis.");
    Get(*r, "port", c.redis.port, "redis.");
    Get(*r, "timeout_ms", c.redis.timeout_ms, "redis.");
    Get(*r, "user", c.redis.user, "redis.");
    Get(*r, "password_file", c.redis.password_file, "redis.");
    Get(*r, "password", c.redis.password, "redis.");
    if (!c.redis.password_file.empty() && !c.redis.password.empty())
      Bad("redis.password", "give password_file or password, not both");
    if (!c.redis.user.empty() && c.redis.password_file.empty() && c.redis.password.empty())
      Bad("redis.user", "needs password_file (or password)");
  }
  if (const json::object* so = Section(o, "services", "")) {
    OnlyKeys(*so, "services.", {"account", "presence", "chat", "group"});
    c.account = Shards(*so, "account");
    c.presence = Shards(*so, "presence");
    c.chat = Shards(*so, "chat");
    c.group = Shards(*so, "group");
  }
  if (auto* g = o.if_contains("gateways"); g) {
    if (!g->is_array()) Bad("gateways", "must be an array");
    int i = 0;
    for (const auto& gw : g->as_array()) {
      std::string path = "gateways[" + std::to_string(i++) + "].";
      if (!gw.is_object()) Bad(path, "must be an object");
      OnlyKeys(gw.as_object(), path, {"id", "listen", "trusted_proxies"});
      GatewayConfig gc;
      Get(gw.as_object(), "id", gc.id, path);
      Get(gw.as_object(), "listen", gc.listen, path);
      if (gc.id.empty() || gc.listen.empty()) Bad(path, "id and listen are required");
      if (auto* t = gw.as_object().if_contains("trusted_proxies")) {
        if (!t->is_array()) Bad(path + "trusted_proxies", "must be an array of IP addresses or CIDR blocks");
        for (const auto& r : t->as_array()) {
          if (!r.is_string() || !ParseIpRange(r.as_string()))
            Bad(path + "trusted_proxies",
                "\"" + (r.is_string() ? std::string(r.as_string()) : json::serialize(r)) +
                    "\" is not an IP address or a CIDR block such as 10.0.0.0/8 (host bits zero)");
          gc.trusted_proxies.emplace_back(r.as_string());
        }
      }
      c.gateways.push_back(gc);
    }
  }
  if (const json::object* l = Section(o, "limits", "")) ParseLimits(*l, c.limits);
  if (c.code_sender != "file") Bad("code_sender", "unsupported \"" + c.code_sender + "\" (supported: file)");
  if (c.account.empty()) Bad("services.account", "at least one shard required");
  if (c.presence.empty()) Bad("services.presence", "at least one shard required");
  if (c.chat.empty()) Bad("services.chat", "at least one shard required");
  if (c.group.empty()) Bad("services.group", "at least one shard required");
  ParseInternalTls(Section(o, "internal_tls", ""), c.internal_tls);
  return c;
}

std::string SecretWeakness(const std::string& secret) {
  if (secret == kExampleSecret) return "is the example's placeholder";
  if (secret.size() < 32) return "must be at least 32 characters (64 hex characters recommended)";
  if (std::all_of(secret.begin(), secret.end(), [&](char c) { return c == secret[0]; }))
    return "is one character repeated";
  // Estimated entropy: per character of its shortest repeating unit (a secret that is a shorter one
  // repeated is worth that one), the smaller of log2(the alphabet its character classes span) and the
  // string's own Shannon entropy plus half a bit (a short random string shows a little less than its
  // alphabet's entropy; a patterned one far less).
  size_t period = 1;
  while (period < secret.size()) {
    bool repeats = true;
    for (size_t i = period; i < secret.size() && repeats; ++i) repeats = secret[i] == secret[i % period];
    if (repeats) break;
    ++period;
  }
  bool lower = false, upper = false, digit = false, other = false, hex_only = true;
  std::map<char, int> counts;
  for (char ch : secret) {
    const unsigned char c = static_cast<unsigned char>(ch);
    ++counts[ch];
    lower |= std::islower(c) != 0;
    upper |= std::isupper(c) != 0;
    digit |= std::isdigit(c) != 0;
    other |= !std::isalnum(c);
    hex_only &= std::isxdigit(c) != 0;
  }
  double alphabet = hex_only ? 16 : (lower ? 26 : 0) + (upper ? 26 : 0) + (digit ? 10 : 0) + (other ? 32 : 0);
  double shannon = 0;
  for (const auto& [c, n] : counts) {
    const double p = static_cast<double>(n) / static_cast<double>(secret.size());
    shannon -= p * std::log2(p);
  }
  const double bits = static_cast<double>(period) * std::min(std::log2(alphabet), shannon + 0.5);
  if (bits < 128) return "looks guessable (about " + std::to_string(static_cast<int>(bits)) + " bits; 128 needed)";
  return "";
}

std::string ExpandKind(const std::string& path, const std::string& kind) {
  static const std::string kPlaceholder = "{kind}";
  std::string out = path;
  for (size_t at = out.find(kPlaceholder); at != std::string::npos; at = out.find(kPlaceholder, at + kind.size()))
    out.replace(at, kPlaceholder.size(), kind);
  return out;
}

void LoadInternalTls(InternalTlsConfig& tls, const std::string& kind) {
  if (tls.insecure_plaintext) return;
  tls.ca_pem = ReadPem(ExpandKind(tls.ca_file, kind), "ca_file");
  tls.cert_pem = ReadPem(ExpandKind(tls.cert_file, kind), "cert_file");
  tls.key_pem = ReadPem(ExpandKind(tls.key_file, kind), "key_file");
}

namespace {
// The password in `file` (kind expanded), without its trailing newline; throws naming the file.
std::string ReadPasswordFile(const std::string& file, const std::string& kind, const char* section) {
  const std::string path = ExpandKind(file, kind);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(section) + ": cannot read password_file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pw = ss.str();
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  if (pw.empty()) throw std::runtime_error(std::string(section) + ": password_file " + path + " is empty");
  return pw;
}
}  // namespace

void LoadRedisAuth(RedisConfig& redis, const std::string& kind) {
  redis.user = ExpandKind(redis.user, kind);
  if (!redis.password_file.empty()) redis.password = ReadPasswordFile(redis.password_file, kind, "redis");
}

void LoadPostgresAuth(PostgresConfig& pg, const std::string& kind) {
  pg.user = ExpandKind(pg.user, kind);
  if (!pg.password_file.empty()) pg.password = ReadPasswordFile(pg.password_file, kind, "postgres");
}

ClusterConfig LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("config: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

}  // namespace chat
