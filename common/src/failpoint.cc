#include "common/failpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

namespace chat {

namespace {

// Read once, on first use.
const std::set<std::string>& Armed() {
  static const std::set<std::string> armed = [] {
    std::set<std::string> names;
    const char* env = std::getenv("CHAT_FAILPOINTS");
    std::stringstream in(env ? env : "");
    for (std::string name; std::getline(in, name, ',');)
      if (!name.empty()) names.insert(name);
    return names;
  }();
  return armed;
}

}  // namespace

void Failpoint(const char* name) {
  const auto& armed = Armed();
  if (armed.empty() || !armed.count(name)) return;
  spdlog::critical("failpoint {}: exiting", name);
  spdlog::default_logger()->flush();
  _exit(kFailpointExitCode);
}

}  // namespace chat
