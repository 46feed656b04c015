// gateway: parses flags and config, runs the Gateway until SIGTERM/SIGINT, then drains.
#include <sched.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <thread>

#include "common/config.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  chat::BlockTerminationSignals();
  namespace po = boost::program_options;
  po::options_description desc("gateway options");
  std::string config_path, listen;
  int index = 0, threads = 0;
  desc.add_options()("help", "show help")("config", po::value(&config_path)->required(), "cluster config JSON")(
      "index", po::value(&index)->default_value(0), "which gateways[] entry this process is")(
      "listen", po::value(&listen), "override host:port to listen on")(
      "threads", po::value(&threads)->default_value(0), "io threads (0 = the cores this process may run on)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "gateway: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  try {
    auto config = chat::LoadConfig(config_path);
    if (index < 0 || index >= static_cast<int>(config.gateways.size()))
      throw std::runtime_error("--index out of range of gateways[]");
    chat::InitLogging("gateway[" + config.gateways[index].id + "]", config.log_level);
    if (threads <= 0) {
      // Cores in the affinity mask (taskset, cpusets), not the machine's: more io threads than cores
      // only adds strand and lock contention.
      cpu_set_t set;
      CPU_ZERO(&set);
      threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                            : static_cast<int>(std::thread::hardware_concurrency());
      threads = std::max(1, threads);
    }
    chat::gateway::Gateway gw(config, index, threads, listen);
    gw.Start();
    chat::WaitForTerminationSignal();
    gw.Stop();
  } catch (const std::exception& e) {
    std::cerr << "gateway: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
