#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace chat {
// Sets the default logger: stderr, "<time> <process> <level> message". Call once in main().
void InitLogging(const std::string& process, const std::string& level);
// Blocks SIGINT/SIGTERM in the calling thread (and the threads it starts) so that
// WaitForTerminationSignal() can take them. Call first thing in main().
void BlockTerminationSignals();
int64_t NowMs();
}  // namespace chat
