#include "common/redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>

namespace chat {

namespace {
RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

// AUTH on a new connection; false (logged, at most every 10 s per process) when refused. The
// password is never logged; Redis's refusal does not echo it.
bool Authenticate(redisContext* c, const RedisConfig& cfg) {
  if (cfg.password.empty()) return true;
  std::vector<const char*> argv{"AUTH"};
  std::vector<size_t> lens{4};
  if (!cfg.user.empty()) {
    argv.push_back(cfg.user.data());
    lens.push_back(cfg.user.size());
  }
  argv.push_back(cfg.password.data());
  lens.push_back(cfg.password.size());
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  const bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (!ok) {
    static std::atomic<int64_t> last_logged_s{0};
    const int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = last_logged_s.load();
    if (now_s - last >= 10 && last_logged_s.compare_exchange_strong(last, now_s))
      spdlog::error("redis: AUTH as user \"{}\" refused: {}", cfg.user.empty() ? "default" : cfg.user,
                    r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string(c->errstr));
  }
  if (r) freeReplyObject(r);
  return ok;
}

redisContext* Connect(const RedisConfig& cfg) {
  timeval tv{cfg.timeout_ms / 1000, (cfg.timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(cfg.host.c_str(), cfg.port, tv);
  if (!c) return nullptr;
  if (c->err) {
    redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  redisEnableKeepAlive(c);
  if (!Authenticate(c, cfg)) {
    redisFree(c);
    return nullptr;
  }
  return c;
}

void AppendArgs(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
}
}  // namespace

std::string GatewayChannel(const std::string& gateway_id) { return "gw." + gateway_id; }

RedisClient::RedisClient(RedisConfig cfg) : cfg_(std::move(cfg)) {}
RedisClient::~RedisClient() { Drop(); }

void RedisClient::Drop() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool RedisClient::EnsureConnected() {
  if (ctx_) return true;
  ctx_ = Connect(cfg_);
  return ctx_ != nullptr;
}

std::optional<RedisReply> RedisClient::Command(const std::vector<std::string>& args) {
  auto r = Pipeline({args});
  if (!r) return std::nullopt;
  return std::move((*r)[0]);
}

std::optional<std::vector<RedisReply>> RedisClient::Pipeline(const std::vector<std::vector<std::string>>& cmds) {
  std::lock_guard lk(mu_);
  // A connection that worked before may have been closed by the server since (Redis restarted):
  // when the server is found gone on a reused connection, the pipeline runs once more on a fresh
  // one, so the first call after a restart succeeds. Not after a timeout: the server may be slow but
  // executing, and a retry would only double the wait.
  for (int attempt = 0;; ++attempt) {
    const bool reused = ctx_ != nullptr;
    if (!EnsureConnected()) return std::nullopt;
    for (const auto& c : cmds) AppendArgs(ctx_, c);
    std::vector<RedisReply> out;
    out.reserve(cmds.size());
    bool lost = false;
    for (size_t i = 0; i < cmds.size() && !lost; ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
        lost = true;
        break;
      }
      out.push_back(Convert(static_cast<redisReply*>(raw)));
      freeReplyObject(raw);
    }
    if (!lost) return out;
    const bool server_gone =
        ctx_->err == REDIS_ERR_EOF || (ctx_->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
    spdlog::warn("redis: connection lost: {}", ctx_->errstr);
    Drop();
    if (!reused || !server_gone || attempt > 0 || !out.empty()) return std::nullopt;
  }
}

RedisSubscriber::RedisSubscriber(RedisConfig cfg, std::vector<std::string> channels, OnMessage on_message,
                                 std::function<void()> on_reconnect, std::function<void()> on_drained)
    : cfg_(std::move(cfg)),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)),
      on_reconnect_(std::move(on_reconnect)),
      on_drained_(std::move(on_drained)) {}

RedisSubscriber::~RedisSubscriber() { Stop(); }

void RedisSubscriber::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RedisSubscriber::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool RedisSubscriber::WaitConnected(bool want, std::chrono::milliseconds timeout) {
  std::unique_lock lk(state_mu_);
  return state_cv_.wait_for(lk, timeout, [&] { return connected_.load() == want; });
}

void RedisSubscriber::SetConnected(bool connected) {
  {
    std::lock_guard lk(state_mu_);
    connected_ = connected;
  }
  state_cv_.notify_all();
}

void RedisSubscriber::Run() {
  // The socket is read only after poll() says it is readable, so a quiet channel never times the
  // connection out and Stop() is noticed within kPollMs.
  constexpr int kPollMs = 200;
  bool ever_connected = false;
  while (!stop_) {
    redisContext* c = Connect(cfg_);
    if (!c) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      continue;
    }
    std::vector<std::string> args{"SUBSCRIBE"};
    args.insert(args.end(), channels_.begin(), channels_.end());
    AppendArgs(c, args);
    int done = 0;
    while (!done && redisBufferWrite(c, &done) == REDIS_OK) {
    }
    if (!done) {
      redisFree(c);
      continue;
    }
    size_t acks = 0;
    bool ok = true;
    while (ok && !stop_) {
      void* raw = nullptr;
      if (redisReaderGetReply(c->reader, &raw) != REDIS_OK) {
        ok = false;
        break;
      }
      if (!raw) {
        if (on_drained_) on_drained_();
        pollfd pfd{c->fd, POLLIN, 0};
        int n = poll(&pfd, 1, kPollMs);
        if (n < 0 && errno != EINTR) ok = false;
        if (n > 0 && redisBufferRead(c) != REDIS_OK) {
          spdlog::warn("redis: subscriber connection lost: {}", c->errstr);
          ok = false;
        }
        continue;
      }
      auto* r = static_cast<redisReply*>(raw);
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        std::string_view kind(r->element[0]->str, r->element[0]->len);
        if (kind == "message") {
          on_message_(std::string_view(r->element[1]->str, r->element[1]->len),
                      std::string_view(r->element[2]->str, r->element[2]->len));
        } else if (kind == "subscribe" && ++acks == channels_.size()) {
          spdlog::info("redis: subscribed to {} channel(s)", channels_.size());
          // The owner hears of a resubscription before anyone waiting in WaitConnected is woken.
          if (ever_connected && on_reconnect_) on_reconnect_();
          ever_connected = true;
          SetConnected(true);
        }
      }
      freeReplyObject(raw);
    }
    SetConnected(false);
    redisFree(c);
  }
}

}  // namespace chat
