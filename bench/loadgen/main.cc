// chat-loadgen: drives the project's gateways (chat.v1.proto / chat.v1.json) or the socket.io peer
// with one of the benchmark scenarios, checks every delivery, and prints a summary and a JSON result.
//
// Process model: the coordinator (this main) prepares the plan (and, for the project, users,
// friendships and the group), then forks --workers processes that each hold a share of the
// connections (each stays under the 20,000 open files a process may have here). It steers them
// through shared memory, samples the server processes from /proc, prints progress every second and
// merges the results. Exit status: 0 when the run completed with nothing lost or duplicated.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/shard.h"
#include "histogram.h"
#include "proc_stats.h"
#include "sessions.h"
#include "setup.h"
#include "worker.h"

namespace po = boost::program_options;
namespace json = boost::json;
using namespace bench;

namespace {

struct Options {
  std::string protocol = "socketio";
  bool json = false;
  std::string urls;
  std::string env_file;
  std::string codes_file;
  std::string token_cache;
  std::string scenario = "dm";
  int conns = 1000;
  int max_users = 0;
  int pairs = 100;
  int inflight = 4;
  double rate = 0;  // total offered msg/s; 0 = closed loop
  int group_size = 500;
  int senders = 4;
  double duration = 10;
  double warmup = 2;
  double drain_timeout = 15;
  double settle = 3;
  double connect_timeout = 120;
  int body_bytes = 64;
  int workers = 0;
  std::vector<std::string> pids;
  std::string out;
  std::string label;
  int resync_messages = 10000;
  int resync_friends = 20;
  bool quiet = false;
};

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> env;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    size_t eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
      v = v.substr(1, v.size() - 2);
    env[line.substr(0, eq)] = v;
  }
  return env;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\n') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

json::object HistogramJson(const Histogram& h) {
  json::object o;
  o["count"] = h.Count();
  o["mean_us"] = h.Mean();
  o["p50_us"] = h.Percentile(0.50);
  o["p90_us"] = h.Percentile(0.90);
  o["p99_us"] = h.Percentile(0.99);
  o["p999_us"] = h.Percentile(0.999);
  o["max_us"] = h.Max();
  // The distribution as (upper bound us, cumulative fraction) for plots.
  json::array cdf;
  uint64_t seen = 0;
  for (int i = 0; i < Histogram::kBuckets && h.Count() > 0; ++i) {
    uint64_t n = h.BucketCount(i);
    if (n == 0) continue;
    seen += n;
    cdf.push_back(json::array{Histogram::UpperBound(i), static_cast<double>(seen) / static_cast<double>(h.Count())});
  }
  o["cdf"] = std::move(cdf);
  return o;
}

std::string Ms(uint64_t us) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2fms", static_cast<double>(us) / 1000.0);
  return b;
}

double Seconds() { return static_cast<double>(NowUs()) / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  po::options_description desc("chat-loadgen options");
  desc.add_options()("help,h", "this help")("protocol", po::value(&o.protocol)->default_value(o.protocol),
                                            "project | socketio")(
      "json", po::bool_switch(&o.json), "project: chat.v1.json text frames instead of chat.v1.proto")(
      "urls", po::value(&o.urls), "gateway URLs, comma or space separated (ws://host:port/path)")(
      "env", po::value(&o.env_file),
      "read GATEWAY_URLS/CHAT_CODES_FILE (project) or PEER_URLS (socketio) from this file")(
      "codes-file", po::value(&o.codes_file), "project: dev code sender's file (lines '<unix_ms> <phone> <code>')")(
      "token-cache", po::value(&o.token_cache), "project: cache of users, tokens, friendships and groups")(
      "scenario", po::value(&o.scenario)->default_value(o.scenario), "idle | dm | fanout | latency | resync")(
      "conns", po::value(&o.conns)->default_value(o.conns), "idle: connections")(
      "max-users", po::value(&o.max_users)->default_value(o.max_users),
      "idle: distinct users (0 = one per connection; fewer = several sessions per user)")(
      "pairs", po::value(&o.pairs)->default_value(o.pairs),
      "dm/latency: sender->receiver pairs (on different gateways)")(
      "inflight", po::value(&o.inflight)->default_value(o.inflight), "closed loop: messages in flight per sender")(
      "rate", po::value(&o.rate)->default_value(o.rate), "open loop: total offered messages/s (0 = closed loop)")(
      "group-size", po::value(&o.group_size)->default_value(o.group_size), "fanout: members")(
      "senders", po::value(&o.senders)->default_value(o.senders), "fanout: members that send")(
      "duration", po::value(&o.duration)->default_value(o.duration), "measured seconds")(
      "warmup", po::value(&o.warmup)->default_value(o.warmup), "seconds of load before measuring")(
      "drain-timeout", po::value(&o.drain_timeout)->default_value(o.drain_timeout),
      "seconds to wait for outstanding deliveries")("settle", po::value(&o.settle)->default_value(o.settle),
                                                    "idle: seconds between connecting and measuring")(
      "connect-timeout", po::value(&o.connect_timeout)->default_value(o.connect_timeout),
      "seconds for every connection to open")("body-bytes", po::value(&o.body_bytes)->default_value(o.body_bytes),
                                              "message body size")(
      "workers", po::value(&o.workers)->default_value(o.workers), "worker processes (0 = one per 15,000 connections)")(
      "pid", po::value(&o.pids)->composing(),
      "NAME=PID of a server process to sample (repeatable); names starting with 'gw', 'gateway' or 'server' are the "
      "connection holders")("out", po::value(&o.out), "write the JSON result here")("label", po::value(&o.label),
                                                                                    "free text copied into the result")(
      "resync-messages", po::value(&o.resync_messages)->default_value(o.resync_messages),
      "resync: messages that arrive while offline")(
      "resync-friends", po::value(&o.resync_friends)->default_value(o.resync_friends),
      "resync: conversations they arrive in")("quiet", po::bool_switch(&o.quiet), "no progress lines");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "chat-loadgen: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }

  Plan plan;
  if (o.protocol == "project")
    plan.protocol = Protocol::kProject;
  else if (o.protocol == "socketio")
    plan.protocol = Protocol::kSocketIo;
  else {
    std::cerr << "chat-loadgen: --protocol must be project or socketio\n";
    return 2;
  }
  const bool project = plan.protocol == Protocol::kProject;
  if (!o.env_file.empty()) {
    auto env = ReadEnvFile(o.env_file);
    if (o.urls.empty()) o.urls = env[project ? "GATEWAY_URLS" : "PEER_URLS"];
    if (o.codes_file.empty()) o.codes_file = env["CHAT_CODES_FILE"];
  }
  for (const auto& u : Split(o.urls)) {
    Endpoint ep;
    if (!ParseWsUrl(u, &ep)) {
      std::cerr << "chat-loadgen: bad URL " << u << "\n";
      return 2;
    }
    plan.gateways.push_back(ep);
  }
  if (plan.gateways.empty()) {
    std::cerr << "chat-loadgen: no gateway URLs (--urls or --env)\n";
    return 2;
  }
  plan.json = o.json;
  plan.body_bytes = std::max(32, o.body_bytes);
  plan.inflight = std::max(1, o.inflight);
  {
    std::random_device rd;
    char nonce[32];
    std::snprintf(nonce, sizeof nonce, "%08x", rd());
    plan.run_nonce = nonce;
  }
  const int G = static_cast<int>(plan.gateways.size());

  std::vector<WatchedProcess> watched;
  for (const auto& p : o.pids) {
    size_t eq = p.find('=');
    if (eq == std::string::npos) {
      std::cerr << "chat-loadgen: --pid wants NAME=PID\n";
      return 2;
    }
    watched.push_back({p.substr(0, eq), std::atoi(p.c_str() + eq + 1)});
  }
  auto is_gateway = [](const std::string& n) {
    return n.rfind("gw", 0) == 0 || n.rfind("gateway", 0) == 0 || n.rfind("server", 0) == 0;
  };

  // ---- Users and the shape of the scenario.
  int users_needed = 0;
  std::vector<std::pair<int, int>> friendships;
  int group_size = 0;
  const std::string& sc = o.scenario;
  if (sc == "latency" && o.rate <= 0) o.rate = 2000;
  if (sc == "idle") {
    users_needed = o.max_users > 0 ? std::min(o.conns, o.max_users) : o.conns;
  } else if (sc == "dm" || sc == "latency") {
    users_needed = 2 * o.pairs;
    for (int k = 0; k < o.pairs; ++k) friendships.emplace_back(2 * k, 2 * k + 1);
  } else if (sc == "fanout") {
    users_needed = o.group_size;
    group_size = o.group_size;
    for (int i = 1; i < o.group_size; ++i) friendships.emplace_back(0, i);
  } else if (sc == "resync") {
    if (!project) {
      std::cerr << "chat-loadgen: resync needs --protocol project (the peer stores nothing)\n";
      return 2;
    }
    users_needed = o.resync_friends + 1;
    for (int i = 1; i <= o.resync_friends; ++i) friendships.emplace_back(0, i);
  } else {
    std::cerr << "chat-loadgen: unknown scenario " << sc << "\n";
    return 2;
  }

  json::object result;
  result["scenario"] = sc;
  result["protocol"] = o.protocol;
  result["encoding"] = project ? (o.json ? "json" : "proto") : "socket.io";
  result["label"] = o.label;
  result["gateways"] = G;

  uint64_t group_id = 1;
  if (project) {
    if (o.codes_file.empty()) {
      std::cerr << "chat-loadgen: --codes-file (or CHAT_CODES_FILE in --env) is needed to sign users up\n";
      return 2;
    }
    SetupRequest sr;
    sr.gateways = plan.gateways;
    sr.json = o.json;
    sr.codes_file = o.codes_file;
    sr.cache_path = o.token_cache;
    sr.users = users_needed;
    sr.friendships = friendships;
    sr.group_size = group_size;
    SetupResult setup = RunProjectSetup(sr);
    if (!setup.ok) {
      std::cerr << "chat-loadgen: setup failed: " << setup.error << "\n";
      return 3;
    }
    std::fprintf(stderr, "setup: %d users ready (%d signed up, %d logged in, %d friendships) in %.1fs\n", users_needed,
                 setup.signed_up, setup.logged_in, setup.friendships_made, setup.seconds);
    for (auto& u : setup.users) plan.users.push_back({std::to_string(u.id), u.id, u.token});
    group_id = setup.group_id;
    if (sc == "resync") {
      ResyncRequest rr;
      rr.gateways = plan.gateways;
      rr.json = o.json;
      rr.hub = setup.users[0];
      rr.friends.assign(setup.users.begin() + 1, setup.users.end());
      rr.messages = o.resync_messages;
      rr.run_nonce = plan.run_nonce;
      ResyncResult r = RunResync(rr);
      std::fprintf(stderr,
                   "resync: %llu messages sent in %.1fs; catch-up %.1f ms (connect %.1f, list %.1f) over %d "
                   "conversations, %d pages; fetched %llu, missing %llu, duplicates %llu%s%s\n",
                   (unsigned long long)r.sent, r.send_seconds, r.catch_up_ms, r.connect_ms, r.list_ms, r.conversations,
                   r.pages, (unsigned long long)r.fetched, (unsigned long long)r.missing,
                   (unsigned long long)r.duplicates, r.error.empty() ? "" : " error: ", r.error.c_str());
      result["resync"] = json::object{{"sent", r.sent},
                                      {"fetched", r.fetched},
                                      {"missing", r.missing},
                                      {"duplicates", r.duplicates},
                                      {"conversations", r.conversations},
                                      {"pages", r.pages},
                                      {"send_seconds", r.send_seconds},
                                      {"connect_ms", r.connect_ms},
                                      {"list_ms", r.list_ms},
                                      {"catch_up_ms", r.catch_up_ms},
                                      {"error", r.error}};
      result["lost"] = r.missing;
      result["duplicates"] = r.duplicates;
      result["pass"] = r.ok;
      if (!o.out.empty()) std::ofstream(o.out) << json::serialize(result) << "\n";
      std::cout << json::serialize(result) << "\n";
      return r.ok ? 0 : 1;
    }
  } else {
    for (int i = 0; i < users_needed; ++i) plan.users.push_back({std::to_string(i + 1), 0, ""});
  }

  // Connections, streams and who must receive what.
  if (sc == "idle") {
    for (int i = 0; i < o.conns; ++i) plan.conns.push_back({i % static_cast<int>(plan.users.size()), i % G, {}});
  } else if (sc == "dm" || sc == "latency") {
    // Pair k: sender 2k on gateway k%G, receiver 2k+1 on the next gateway.
    for (int k = 0; k < o.pairs; ++k) {
      int sg = k % G, rg = (k + 1) % G;
      plan.conns.push_back({2 * k, sg, {}});
      plan.conns.push_back({2 * k + 1, rg, {k}});
      StreamSpec s;
      s.conn = 2 * k;
      const UserSpec& from = plan.users[static_cast<size_t>(2 * k)];
      const UserSpec& to = plan.users[static_cast<size_t>(2 * k + 1)];
      if (project)
        s.target.conversation = chat::DirectConversationId(from.user_id, to.user_id);
      else
        s.target.peer_user = to.peer_id;
      plan.streams.push_back(s);
    }
  } else if (sc == "fanout") {
    int senders = std::min(o.senders, o.group_size);
    for (int i = 0; i < o.group_size; ++i) {
      ConnSpec c{i, i % G, {}};
      for (int s = 0; s < senders; ++s) {
        if (s != i) c.expect_streams.push_back(s);
      }
      plan.conns.push_back(c);
    }
    for (int s = 0; s < senders; ++s) {
      StreamSpec st;
      st.conn = s;
      st.receivers = o.group_size - 1;
      if (project)
        st.target.conversation = chat::GroupConversationId(group_id);
      else
        st.target.peer_group = "1";
      plan.streams.push_back(st);
    }
    if (!project) plan.peer_group = "1";
  }
  if (static_cast<int>(plan.streams.size()) > kMaxStreams) {
    std::cerr << "chat-loadgen: too many senders\n";
    return 2;
  }
  plan.closed_loop = o.rate <= 0;
  if (!plan.closed_loop) plan.rate_per_stream = o.rate / static_cast<double>(std::max<size_t>(1, plan.streams.size()));
  plan.workers = o.workers > 0 ? o.workers : std::max(1, static_cast<int>((plan.conns.size() + 14999) / 15000));
  plan.workers = std::min(plan.workers, kMaxWorkers);
  // Which worker holds each connection: a dm pair shares one (its receiver's deliveries pace the
  // sender in closed loop); a fan-out group is small and lives in worker 0; idle ones round-robin.
  plan.conn_worker.resize(plan.conns.size());
  std::vector<size_t> per_worker(static_cast<size_t>(plan.workers), 0);
  for (size_t c = 0; c < plan.conns.size(); ++c) {
    int w = static_cast<int>(c % static_cast<size_t>(plan.workers));
    if (sc == "dm" || sc == "latency") w = static_cast<int>((c / 2) % static_cast<size_t>(plan.workers));
    if (sc == "fanout") w = 0;
    plan.conn_worker[c] = w;
    ++per_worker[static_cast<size_t>(w)];
  }
  if (*std::max_element(per_worker.begin(), per_worker.end()) > 18000) {
    std::cerr << "chat-loadgen: more than 18,000 connections per worker; raise --workers\n";
    return 2;
  }

  // ---- Fork the workers.
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  Shared* shared = new (mem) Shared();
  auto before = SampleProcesses(watched);
  std::vector<pid_t> children;
  std::fflush(nullptr);
  for (int w = 0; w < plan.workers; ++w) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) {
      int rc = RunWorker(plan, shared, w);
      std::fflush(nullptr);
      _exit(rc);
    }
    children.push_back(pid);
  }
  std::vector<bool> reaped(children.size(), false);
  auto kill_workers = [&] {
    for (pid_t c : children) kill(c, SIGKILL);
  };

  auto sum = [&](auto field) {
    uint64_t t = 0;
    for (int w = 0; w < plan.workers; ++w) t += (shared->workers[w].*field).load(std::memory_order_relaxed);
    return t;
  };
  auto all_state = [&](int s) {
    for (int w = 0; w < plan.workers; ++w) {
      if (shared->workers[w].state.load() < s) return false;
    }
    return true;
  };
  auto any_worker_died = [&] {
    // A worker that exits before it has written its results has failed (crash, kill).
    for (int w = 0; w < plan.workers; ++w) {
      int st;
      if (reaped[w]) continue;
      if (waitpid(children[w], &st, WNOHANG) == children[w]) {
        reaped[w] = true;
        if (shared->workers[w].state.load() < kStateFinished) return true;
      }
    }
    return false;
  };

  uint64_t last_sent = 0, last_delivered = 0;
  double last_t = Seconds();
  const double t_start = last_t;
  auto progress = [&](const char* what) {
    double now = Seconds();
    uint64_t sent = sum(&WorkerStats::sent), delivered = sum(&WorkerStats::delivered);
    double dt = std::max(1e-3, now - last_t);
    if (!o.quiet) {
      std::fprintf(stderr,
                   "[%5.1fs] %-8s conns %llu/%zu (fail %llu, closed %llu)  sent %llu (%.0f/s)  acked %llu  err %llu  "
                   "delivered %llu (%.0f/s)\n",
                   now - t_start, what, (unsigned long long)sum(&WorkerStats::connected), plan.conns.size(),
                   (unsigned long long)sum(&WorkerStats::connect_failed),
                   (unsigned long long)sum(&WorkerStats::disconnected), (unsigned long long)sent,
                   static_cast<double>(sent - last_sent) / dt, (unsigned long long)sum(&WorkerStats::acked),
                   (unsigned long long)sum(&WorkerStats::send_errors), (unsigned long long)delivered,
                   static_cast<double>(delivered - last_delivered) / dt);
    }
    last_sent = sent;
    last_delivered = delivered;
    last_t = now;
  };
  // Waits until `done` or the deadline, printing progress every second; false on a dead worker.
  bool worker_died = false;
  auto wait_until = [&](const char* what, double deadline, auto done) {
    double next_progress = Seconds() + 1;
    while (Seconds() < deadline && !done()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (any_worker_died()) {
        worker_died = true;
        return false;
      }
      if (Seconds() >= next_progress) {
        progress(what);
        next_progress += 1;
      }
    }
    return done();
  };

  // Phase 0: connect.
  double connect_started = Seconds();
  bool connected = wait_until("connect", Seconds() + o.connect_timeout, [&] { return all_state(kStateReady); });
  double connect_seconds = Seconds() - connect_started;
  progress("connect");
  std::fprintf(stderr, "connected %llu of %zu in %.1fs\n", (unsigned long long)sum(&WorkerStats::connected),
               plan.conns.size(), connect_seconds);

  std::vector<ProcSample> m0, m1;
  double measured_seconds = 0;
  uint64_t expected = 0;
  bool drained = true;
  if (connected && !worker_died) {
    if (sc == "idle") {
      wait_until("settle", Seconds() + o.settle, [] { return false; });
      m0 = SampleProcesses(watched);
      double t0 = Seconds();
      wait_until("idle", t0 + o.duration, [] { return false; });
      m1 = SampleProcesses(watched);
      measured_seconds = Seconds() - t0;
    } else {
      int64_t start = NowUs() + static_cast<int64_t>(o.warmup * 1e6);
      int64_t end = start + static_cast<int64_t>(o.duration * 1e6);
      shared->window_start_us.store(start);
      shared->window_end_us.store(end);
      shared->phase.store(kPhaseRun);
      wait_until("warmup", static_cast<double>(start) / 1e6, [] { return false; });
      m0 = SampleProcesses(watched);
      wait_until("run", static_cast<double>(end) / 1e6, [] { return false; });
      m1 = SampleProcesses(watched);
      measured_seconds = static_cast<double>(end - start) / 1e6;
      shared->phase.store(kPhaseStop);
      auto expected_now = [&] {
        uint64_t e = 0;
        for (size_t s = 0; s < plan.streams.size(); ++s) {
          e += shared->sent_ok[s].load() * static_cast<uint64_t>(plan.streams[s].receivers);
        }
        return e;
      };
      drained = wait_until("drain", Seconds() + o.drain_timeout, [&] {
        uint64_t sent = sum(&WorkerStats::sent);
        uint64_t answered = sum(&WorkerStats::acked) + sum(&WorkerStats::send_errors);
        return answered >= sent && sum(&WorkerStats::distinct) >= expected_now();
      });
      expected = expected_now();
    }
  }
  shared->phase.store(kPhaseFinish);
  bool finished = wait_until("finish", Seconds() + 15, [&] { return all_state(kStateFinished); });
  if (!finished) kill_workers();
  for (int w = 0; w < plan.workers; ++w) {
    if (!reaped[w]) waitpid(children[w], nullptr, 0);
  }

  // ---- Results.
  Histogram lat, ack;
  uint64_t lost = 0, dup = 0, ooo = 0, unexpected = 0, undecodable = 0;
  std::string first_error;
  for (int w = 0; w < plan.workers; ++w) {
    const WorkerStats& ws = shared->workers[w];
    lat.Merge(ws.latency);
    ack.Merge(ws.ack_latency);
    lost += ws.lost;
    dup += ws.duplicates;
    ooo += ws.out_of_order;
    unexpected += ws.unexpected;
    undecodable += ws.undecodable;
    if (first_error.empty() && ws.first_error[0]) first_error = ws.first_error;
  }
  uint64_t conn_ok = sum(&WorkerStats::connected), conn_fail = sum(&WorkerStats::connect_failed);
  uint64_t sent = sum(&WorkerStats::sent), acked = sum(&WorkerStats::acked), errors = sum(&WorkerStats::send_errors);
  uint64_t delivered_window = sum(&WorkerStats::delivered_in_window), sent_window = sum(&WorkerStats::sent_in_window);

  double tps = TicksPerSecond();
  json::array procs;
  uint64_t gw_rss_before = 0, gw_rss_after = 0;
  double total_cpu = 0;
  for (size_t i = 0; i < watched.size(); ++i) {
    json::object p;
    p["name"] = watched[i].name;
    p["pid"] = watched[i].pid;
    p["rss_before_bytes"] = before[i].rss_bytes;
    if (i < m1.size()) {
      double cpu = static_cast<double>(m1[i].cpu_ticks - m0[i].cpu_ticks) / tps / std::max(1e-3, measured_seconds);
      p["cpu_cores"] = cpu;  // utime+stime per second of the measured window
      p["rss_bytes"] = m1[i].rss_bytes;
      total_cpu += cpu;
      if (is_gateway(watched[i].name)) {
        gw_rss_before += before[i].rss_bytes;
        gw_rss_after += m1[i].rss_bytes;
      }
    }
    procs.push_back(std::move(p));
  }
  result["processes"] = std::move(procs);
  result["servers_cpu_cores"] = total_cpu;
  result["connections"] = plan.conns.size();
  result["connected"] = conn_ok;
  result["connect_failed"] = conn_fail;
  result["connect_seconds"] = connect_seconds;
  result["measured_seconds"] = measured_seconds;
  result["sent"] = sent;
  result["acked"] = acked;
  result["send_errors"] = errors;
  result["skipped"] = sum(&WorkerStats::skipped);
  result["disconnected"] = sum(&WorkerStats::disconnected);
  result["expected_deliveries"] = expected;
  result["delivered"] = sum(&WorkerStats::delivered);
  result["lost"] = lost;
  result["duplicates"] = dup;
  result["out_of_order"] = ooo;
  result["unexpected"] = unexpected + undecodable;
  result["drained"] = drained;
  result["first_error"] = first_error;
  if (sc == "idle") {
    double per = conn_ok ? (static_cast<double>(gw_rss_after) - static_cast<double>(gw_rss_before)) /
                               static_cast<double>(conn_ok)
                         : 0;
    result["rss_per_connection_bytes"] = per;
    result["gateway_rss_before_bytes"] = gw_rss_before;
    result["gateway_rss_after_bytes"] = gw_rss_after;
  } else {
    result["closed_loop"] = plan.closed_loop;
    result["offered_per_s"] = plan.closed_loop ? 0.0 : o.rate;
    result["inflight_per_sender"] = plan.closed_loop ? plan.inflight : 0;
    result["senders"] = plan.streams.size();
    result["sent_per_s"] = static_cast<double>(sent_window) / std::max(1e-3, measured_seconds);
    result["delivered_per_s"] = static_cast<double>(delivered_window) / std::max(1e-3, measured_seconds);
    result["latency"] = HistogramJson(lat);
    result["ack_latency"] = HistogramJson(ack);
  }
  bool pass = connected && !worker_died && conn_fail == 0 && lost == 0 && dup == 0;
  result["pass"] = pass;

  std::fprintf(stderr, "\n== %s %s: %s\n", o.protocol.c_str(), sc.c_str(), pass ? "PASS" : "FAIL");
  std::fprintf(stderr, "connections %llu/%zu (failed %llu) in %.1fs\n", (unsigned long long)conn_ok, plan.conns.size(),
               (unsigned long long)conn_fail, connect_seconds);
  if (sc == "idle") {
    std::fprintf(stderr, "gateway RSS %.1f -> %.1f MiB: %.0f bytes per connection; servers CPU %.3f cores idle\n",
                 gw_rss_before / 1048576.0, gw_rss_after / 1048576.0, result["rss_per_connection_bytes"].as_double(),
                 total_cpu);
  } else {
    std::fprintf(stderr,
                 "sent %llu acked %llu errors %llu | delivered %.0f/s (sent %.0f/s) | lost %llu dup %llu "
                 "out-of-order %llu unexpected %llu%s\n",
                 (unsigned long long)sent, (unsigned long long)acked, (unsigned long long)errors,
                 result["delivered_per_s"].as_double(), result["sent_per_s"].as_double(), (unsigned long long)lost,
                 (unsigned long long)dup, (unsigned long long)ooo, (unsigned long long)(unexpected + undecodable),
                 drained ? "" : " (NOT drained)");
    std::fprintf(stderr, "send->deliver p50 %s p90 %s p99 %s p99.9 %s max %s (n=%llu)\n",
                 Ms(lat.Percentile(0.5)).c_str(), Ms(lat.Percentile(0.9)).c_str(), Ms(lat.Percentile(0.99)).c_str(),
                 Ms(lat.Percentile(0.999)).c_str(), Ms(lat.Max()).c_str(), (unsigned long long)lat.Count());
    std::fprintf(stderr, "send->ack     p50 %s p99 %s; servers CPU %.2f cores\n", Ms(ack.Percentile(0.5)).c_str(),
                 Ms(ack.Percentile(0.99)).c_str(), total_cpu);
  }
  if (!first_error.empty()) std::fprintf(stderr, "first error: %s\n", first_error.c_str());
  std::string text = json::serialize(result);
  if (!o.out.empty()) std::ofstream(o.out) << text << "\n";
  std::cout << text << "\n";
  return pass ? 0 : 1;
}
