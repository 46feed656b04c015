// The cluster config parser (common/src/config.cc, ParseConfig) on arbitrary files.
//
// Invariants checked:
//   - a refused file is refused with std::runtime_error naming the problem ("config: ..."), never
//     another exception (which would escape main's error message) or a crash;
//   - an accepted file holds what ParseConfig promises: a strong secret, the supported code sender,
//     at least one shard per service, each with an address, gateways with an id and an address, every
//     limit within its declared range;
//   - the PostgreSQL connection string built from it (PostgresConfig::ConnInfo) reads back in libpq
//     as the configured host, user, password and database: no value can inject a setting.
#include <libpq-fe.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/config.h"
#include "fuzz_check.h"

namespace {

void CheckConnInfo(const chat::PostgresConfig& pg, const std::string& database) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(pg.ConnInfo(database).c_str(), &error);
  FUZZ_CHECK(options != nullptr);
  std::map<std::string, std::string> got;
  for (PQconninfoOption* o = options; o->keyword; ++o)
    if (o->val) got[o->keyword] = o->val;
  PQconninfoFree(options);
  FUZZ_CHECK(got["host"] == pg.host);
  FUZZ_CHECK(got["port"] == std::to_string(pg.port));
  FUZZ_CHECK(got["user"] == pg.user);
  FUZZ_CHECK(got["dbname"] == database);
  FUZZ_CHECK(got["password"] == pg.password);
}

void CheckAccepted(const chat::ClusterConfig& c) {
  FUZZ_CHECK(!c.token_keys.keys.empty() && c.token_keys.Find(c.token_keys.signing_key_id));
  for (const auto& k : c.token_keys.keys) FUZZ_CHECK(chat::SecretWeakness(k.secret).empty());
  FUZZ_CHECK(c.code_sender == "file");
  for (const auto* service : {&c.account, &c.presence, &c.chat, &c.group}) {
    FUZZ_CHECK(!service->empty());
    for (const auto& shard : *service) FUZZ_CHECK(!shard.addresses.empty());
  }
  for (const auto& g : c.gateways) FUZZ_CHECK(!g.id.empty() && !g.listen.empty());
  using chat::kNoMax;
#define CHAT_FUZZ_CHECK_LIMIT(section, type, name, def, lo, hi) \
  FUZZ_CHECK(std::cmp_greater_equal(c.limits.section.name, lo) && std::cmp_less_equal(c.limits.section.name, hi));
  CHAT_ALL_LIMITS(CHAT_FUZZ_CHECK_LIMIT)
#undef CHAT_FUZZ_CHECK_LIMIT
  CheckConnInfo(c.postgres, c.account.front().database);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  chat::ClusterConfig config;
  try {
    config = chat::ParseConfig(text);
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::strncmp(e.what(), "config: ", 8) == 0);
    return 0;
  }
  CheckAccepted(config);
  return 0;
}
