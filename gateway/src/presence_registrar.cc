#include "presence_registrar.h"

#include <spdlog/spdlog.h>

#include "common/shard.h"
#include "rate_limiter.h"

namespace chat::gateway {

namespace {
constexpr size_t kMaxBatch = 2000;
constexpr auto kBatchWindow = std::chrono::milliseconds(2);
}  // namespace

PresenceRegistrar::PresenceRegistrar(const ClusterConfig& config, std::string gateway_id,
                                     std::function<std::vector<internal::SessionRef>(int64_t since_ms)> sessions)
    : config_(config),
      gateway_id_(std::move(gateway_id)),
      sessions_(std::move(sessions)),
      stubs_(config.presence, config.internal_tls) {}

PresenceRegistrar::~PresenceRegistrar() {
  if (thread_.joinable()) Stop({});
}

bool PresenceRegistrar::Heartbeat() {
  bool all = true;
  for (uint32_t s = 0; s < stubs_.size(); ++s) {
    internal::GatewayHeartbeatRequest req;
    req.set_gateway_id(gateway_id_);
    req.set_ttl_ms(config_.limits.presence.presence_ttl_ms);
    v1::Empty resp;
    auto ctx = MakeContext(
        std::min<uint32_t>(config_.limits.common.rpc_deadline_ms, config_.limits.presence.presence_ttl_ms / 3));
    auto st = stubs_.at(s).GatewayHeartbeat(ctx.get(), req, &resp);
    if (!st.ok()) {
      spdlog::warn("presence heartbeat to shard {} failed: {}", s, st.error_message());
      all = false;
    }
  }
  return all;
}

bool PresenceRegistrar::Start(uint32_t wait_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  bool ok = Heartbeat();
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // presence still starting
    ok = Heartbeat();
  }
  if (ok) last_good_beat_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Run(); });
  return ok;
}

void PresenceRegistrar::Stop(const std::vector<internal::SessionRef>& remaining) {
  {
    std::lock_guard lk(mu_);
    if (stop_) return;
    unreg_.insert(unreg_.end(), remaining.begin(), remaining.end());
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PresenceRegistrar::Register(internal::SessionRef ref, std::function<void()> done) {
  {
    std::lock_guard lk(mu_);
    reg_.push_back(std::move(ref));
    dones_.push_back(std::move(done));
  }
  cv_.notify_one();
}

void PresenceRegistrar::Unregister(internal::SessionRef ref) {
  {
    std::lock_guard lk(mu_);
    unreg_.push_back(std::move(ref));
  }
  cv_.notify_one();
}

void PresenceRegistrar::Run() {
  const auto beat = std::chrono::milliseconds(config_.limits.presence.presence_ttl_ms / 3);
  auto next_beat = std::chrono::steady_clock::now() + beat;
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait_until(lk, next_beat, [&] { return stop_ || !reg_.empty() || !unreg_.empty(); });
    if (!stop_ && reg_.size() + unreg_.size() < kMaxBatch && (!reg_.empty() || !unreg_.empty())) {
      // Let concurrent connects join this batch.
      cv_.wait_for(lk, kBatchWindow, [&] { return stop_ || reg_.size() + unreg_.size() >= kMaxBatch; });
    }
    auto reg = std::move(reg_);
    auto dones = std::move(dones_);
    auto unreg = std::move(unreg_);
    reg_.clear();
    dones_.clear();
    unreg_.clear();
    bool stopping = stop_;
    lk.unlock();
    if (!reg.empty() || !unreg.empty()) Flush(std::move(reg), std::move(dones), std::move(unreg));
    if (!stopping && std::chrono::steady_clock::now() >= next_beat) {
      auto now = std::chrono::steady_clock::now();
      const int64_t beat_started_ms = SteadyMs();
      bool lapsed = now - last_good_beat_ >= std::chrono::milliseconds(config_.limits.presence.presence_ttl_ms);
      if (Heartbeat()) {
        if (sessions_) {
          auto again = sessions_(lapsed ? 0 : last_touch_ms_);
          if (lapsed && !again.empty())
            spdlog::warn("presence lease may have lapsed; registering {} session(s) again", again.size());
          if (!again.empty()) Flush(std::move(again), {}, {});
        }
        last_good_beat_ = now;
        last_touch_ms_ = beat_started_ms;
      }
      next_beat = std::chrono::steady_clock::now() + beat;
    }
    lk.lock();
    if (stopping && reg_.empty() && unreg_.empty()) return;
  }
}

void PresenceRegistrar::Flush(std::vector<internal::SessionRef> reg, std::vector<std::function<void()>> dones,
                              std::vector<internal::SessionRef> unreg) {
  const uint32_t n = stubs_.size();
  auto send = [&](std::vector<internal::SessionRef>& refs, bool is_register) {
    if (refs.empty()) return;
    std::vector<internal::RegisterRequest> per(n);
    auto call = [&](uint32_t s) {
      auto ctx = MakeContext(config_.limits.common.rpc_deadline_ms);
      v1::Empty resp;
      auto st = is_register ? stubs_.at(s).Register(ctx.get(), per[s], &resp)
                            : stubs_.at(s).Unregister(ctx.get(), per[s], &resp);
      if (!st.ok())
        spdlog::warn("presence {} of {} session(s) on shard {} failed: {} (clients catch up by sync)",
                     is_register ? "register" : "unregister", per[s].sessions_size(), s, st.error_message());
      per[s].clear_sessions();
    };
    // At most kMaxBatch sessions per call (presence refuses more than kMaxIdsPerCall).
    for (auto& r : refs) {
      const uint32_t s = ShardOfUser(r.user_id(), n);
      *per[s].add_sessions() = std::move(r);
      if (static_cast<size_t>(per[s].sessions_size()) >= kMaxBatch) call(s);
    }
    for (uint32_t s = 0; s < n; ++s)
      if (per[s].sessions_size() > 0) call(s);
  };
  // Register first: a session that opened and closed within one window ends unregistered.
  send(reg, true);
  send(unreg, false);
  for (auto& d : dones) d();
}

}  // namespace chat::gateway
