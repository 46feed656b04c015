#include "common/log.h"

#include <google/protobuf/stubs/logging.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>

namespace chat {

void InitLogging(const std::string& process, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt(process);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e " + process + " %l %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  // protobuf logs an ERROR per string field with invalid UTF-8: client-controlled, so debug only.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
        if (level >= google::protobuf::LOGLEVEL_FATAL)
          spdlog::critical("protobuf {}:{}: {}", file, line, message);
        else
          spdlog::debug("protobuf: {}", message);
      });
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace chat
