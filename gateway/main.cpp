// gateway --config PATH [--index N] [--listen HOST:PORT] [--threads N]
// Serves WebSocket clients as config.gateways[N] until SIGTERM/SIGINT, then drains.
#include <sched.h>

#include <algorithm>
#include <thread>

#include "common/service_main.h"
#include "gateway/gateway.h"

namespace {
// Cores in the affinity mask (taskset, cpusets), not the machine's: more io threads than cores only
// adds strand and lock contention.
int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                            : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, n);
}
}  // namespace

int main(int argc, char** argv) {
  chat::gateway::GatewayOptions options;
  options.threads = 0;
  const chat::ServiceSpec spec{
      .name = "gateway",
      .add_flags =
          [&](chat::Flags& flags) {
            flags.Add("index", &options.index, "which gateways[] entry this process is (default 0)");
            flags.Add("listen", &options.listen, "host:port to listen on instead of the entry's");
            flags.Add("threads", &options.threads, "io threads (default 0: the cores this process may run on)");
          },
      .select = [&](const chat::ClusterConfig& config, chat::Flags& flags) -> std::string {
        if (options.index < 0 || options.index >= static_cast<int>(config.gateways.size()))
          flags.Fail("--index " + std::to_string(options.index) + " but the config has " +
                     std::to_string(config.gateways.size()) + " gateway(s)");
        return "gateway[" + config.gateways[options.index].id + "]";
      }};
  return chat::ServiceMain(spec, argc, argv, [&](chat::ServiceProcess& p) {
    if (options.threads <= 0) options.threads = UsableCores();
    chat::gateway::Gateway gateway(p.config, options);
    gateway.Start();
    p.WaitForStop();
    gateway.Stop();
  });
}
