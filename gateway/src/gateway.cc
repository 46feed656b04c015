#include "gateway/gateway.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <random>
#include <thread>

#include "common/fanout.h"
#include "common/log.h"
#include "common/redis.h"
#include "gateway_context.h"
#include "listener.h"
#include "rate_limiter.h"

namespace chat::gateway {

namespace net = boost::asio;

namespace {
uint64_t RandomU64() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ rd();
}

std::string BootId() {
  uint64_t v = RandomU64();
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 8);
}

}  // namespace

struct Gateway::Impl {
  Impl(const ClusterConfig& c, int index, int threads, std::string listen)
      : config(c),
        gw(c.gateways.at(index)),
        instance_id(gw.id + "." + BootId()),
        listen_address(listen.empty() ? gw.listen : listen),
        thread_count(std::max(1, threads)),
        ip_limiter(c.limits.gateway.max_connections_per_ip, c.limits.gateway.new_connections_per_ip_per_second,
                   c.limits.gateway.new_connections_per_ip_burst),
        auth(c.token_keys, c.limits.gateway, MakeGrpcAccountDirectory(c)),
        router(c, instance_id),
        registrar(c, instance_id,
                  [this](int64_t since_ms) {
                    std::vector<internal::SessionRef> refs;
                    const int64_t steady_now = SteadyMs();
                    const int64_t unix_now = NowMs();  // unix ms
                    for (auto& s : hub.All()) {
                      const int64_t last = s->last_request_ms();
                      if (since_ms != 0 && last < since_ms) continue;
                      refs.push_back(s->presence_ref());
                      if (last > 0) refs.back().set_last_active_ms(unix_now - (steady_now - last));
                    }
                    return refs;
                  }),
        ctx{c, c.limits, instance_id, auth, router, hub, registrar, ip_limiter},
        listener(ioc, ctx) {
    ctx.session_ids.Reseed(RandomU64());
    for (const auto& t : gw.trusted_proxies)
      ctx.trusted_proxies.push_back(*ParseIpRange(t));  // validated by ParseConfig
  }

  const ClusterConfig& config;
  const GatewayConfig& gw;
  std::string instance_id;
  std::string listen_address;
  int thread_count;
  // Destruction runs bottom-up: sessions (in the hub, or in handlers the io_context still holds)
  // release their address slot, so the limiter outlives the io_context, which outlives the hub.
  IpLimiter ip_limiter;
  net::io_context ioc;
  Authenticator auth;
  RequestRouter router;
  SessionHub hub;
  PresenceRegistrar registrar;
  GatewayContext ctx;
  Listener listener;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::unique_ptr<RedisSubscriber> subscriber;
  bool stopped = false;
};

Gateway::Gateway(const ClusterConfig& config, GatewayOptions options)
    : impl_(std::make_unique<Impl>(config, options.index, options.threads, std::move(options.listen))) {}

Gateway::~Gateway() { Stop(); }

void Gateway::Start() {
  auto& m = *impl_;
  m.listener.Open(m.listen_address);

  if (!m.registrar.Start(m.config.limits.common.rpc_deadline_ms * 2))
    spdlog::warn("presence did not answer; sessions will be registered once it does");
  m.hub.set_on_revoke([auth = &m.ctx.auth](uint64_t user) { auth->InvalidateAccount(user); });
  m.subscriber = std::make_unique<RedisSubscriber>(
      m.config.redis, std::vector<std::string>{GatewayChannel(m.instance_id), kRevocationChannel},
      [hub = &m.hub](std::string_view channel, std::string_view payload) {
        if (channel == kRevocationChannel)
          hub->Revoke(payload);
        else
          hub->Deliver(payload);
      },
      [] { spdlog::warn("redis: resubscribed; pushes missed meanwhile are repaired by client sync"); },
      [hub = &m.hub] { hub->Flush(); });
  m.subscriber->Start();
  // A client must not be registered with presence before this gateway hears its channel.
  if (!m.subscriber->WaitConnected(true, std::chrono::milliseconds(m.config.limits.common.rpc_deadline_ms * 2)))
    spdlog::warn("redis subscription not confirmed yet; pushes start when it is (clients sync meanwhile)");

  m.work = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(m.ioc.get_executor());
  m.listener.Start();
  for (int i = 0; i < m.thread_count; ++i) m.threads.emplace_back([&m] { m.ioc.run(); });
  spdlog::info("gateway {} ready on {} (port {}, ws path /ws)", m.instance_id, m.listen_address, m.listener.port());
}

void Gateway::Stop() {
  auto& m = *impl_;
  if (m.stopped || m.threads.empty()) return;
  m.stopped = true;
  m.ctx.shutting_down = true;
  m.listener.Close();
  auto sessions = m.hub.All();
  spdlog::info("shutting down: closing {} session(s) with 1012", m.ctx.open_sessions.load());
  for (auto& s : sessions) s->Kick(1012, "gateway restarting; reconnect to another gateway");
  // Unauthenticated sessions are not in the hub; they end by their auth timeout or the deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(m.config.limits.common.drain_timeout_ms);
  while (m.ctx.open_sessions.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // bounded drain poll
  std::vector<internal::SessionRef> remaining;
  for (auto& s : m.hub.All()) remaining.push_back(s->presence_ref());
  m.subscriber->Stop();
  m.registrar.Stop(remaining);
  m.work.reset();
  m.ioc.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
  // gRPC callbacks still in flight post into the (stopped) io_context: wait for them to end, which
  // the RPC deadline bounds, before anything they reference can be destroyed.
  auto rpc_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(m.config.limits.common.rpc_deadline_ms + 1000);
  while ((m.router.inflight() > 0 || m.auth.inflight() > 0) && std::chrono::steady_clock::now() < rpc_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  spdlog::info("gateway stopped ({} session(s) left at the deadline)", m.ctx.open_sessions.load());
}

uint16_t Gateway::port() const { return impl_->listener.port(); }
const std::string& Gateway::instance_id() const { return impl_->instance_id; }
size_t Gateway::sessions() const { return impl_->hub.size(); }

}  // namespace chat::gateway
