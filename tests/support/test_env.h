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

// Keeps gRPC's callback completion queue up for the rest of the test process. libgrpc++ 1.51 shuts
// that queue down when the last channel or server using it goes away, and a test that then starts
// the next one can abort inside gRPC (the old queue's thread races with the new one). Production
// processes keep their channels for life; tests that build and drop callback-API servers or
// channels call this first. Idempotent.
void KeepGrpcCallbackQueueUp();

}  // namespace chat::testing
