#pragma once
// What tests that need real PostgreSQL/Redis use to find them. tests/run starts both and exports
// CHAT_TEST_PG_HOST/PORT/USER and CHAT_TEST_REDIS_HOST/PORT. A test that needs them and finds no
// such variables fails (never skips): a missing service is a broken test environment.
#include <string>

#include "common/config.h"

namespace chat::testing {

PostgresConfig TestPostgres();
RedisConfig TestRedis();
// Creates a new, empty database with a unique name and returns its name.
std::string FreshDatabase(const std::string& prefix);
// Directory holding the built executables (gateway, chat-service, ...).
std::string BinDir();

}  // namespace chat::testing
