#pragma once
// Redis over blocking hiredis 0.14 (no async: its pub/sub path is fragile, see docs).
//
// Every new connection authenticates first (AUTH cfg.user cfg.password) when cfg.password is set; a
// refused AUTH counts as an unreachable Redis (nullopt, or the subscriber retries).
// RedisClient: thread-safe (one connection behind a mutex), reconnects lazily after an error.
// RedisSubscriber: one dedicated thread; pub/sub is a doorbell and may drop messages while
// disconnected (on_reconnect tells the owner so it can prompt a resync).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/config.h"

struct redisContext;

namespace chat {

// The pub/sub channel a gateway subscribes to: every Delivery (services.proto) for its sessions.
std::string GatewayChannel(const std::string& gateway_id);
// The channel every gateway also subscribes to: revocations (Delivery.revocation) of any user, which
// must reach gateways that hold no session of that user too (their account-check caches). Inside the
// gateways' ACL pattern "gw.*", and never an instance's channel ("gw.<id>.<boot id>" has two dots).
inline constexpr char kRevocationChannel[] = "gw.revoked";

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError } type = Type::kNil;
  std::string str;
  long long integer = 0;
  std::vector<RedisReply> elements;
};

class RedisClient {
 public:
  explicit RedisClient(RedisConfig cfg);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // nullopt when Redis is unreachable or the connection broke (the caller decides: UNAVAILABLE,
  // or proceed without the doorbell). A Redis error reply is returned as Type::kError.
  std::optional<RedisReply> Command(const std::vector<std::string>& args);
  // All commands in one round trip; nullopt if the connection failed part-way.
  std::optional<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& cmds);

 private:
  bool EnsureConnected();
  void Drop();
  RedisConfig cfg_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;
};

class RedisSubscriber {
 public:
  using OnMessage = std::function<void(std::string_view channel, std::string_view payload)>;
  // on_message runs for each message, in channel order; on_drained (optional) after the last
  // message that had already arrived, before the subscriber waits for more (consumers that batch
  // flush there). Both run on the subscriber's own thread.
  RedisSubscriber(RedisConfig cfg, std::vector<std::string> channels, OnMessage on_message,
                  std::function<void()> on_reconnect = {}, std::function<void()> on_drained = {});
  ~RedisSubscriber();
  void Start();
  void Stop();  // joins; callbacks never run after Stop returns
  // True while subscribed to every channel (each acknowledged by Redis).
  bool connected() const { return connected_.load(); }
  // Blocks until connected() == want or `timeout` passes; returns whether it got there. Any thread;
  // woken by the subscriber thread each time the subscription is confirmed or the connection lost.
  bool WaitConnected(bool want, std::chrono::milliseconds timeout);

 private:
  void Run();
  void SetConnected(bool connected);
  RedisConfig cfg_;
  std::vector<std::string> channels_;
  OnMessage on_message_;
  std::function<void()> on_reconnect_;
  std::function<void()> on_drained_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::mutex state_mu_;  // pairs with state_cv_ for WaitConnected
  std::condition_variable state_cv_;
  std::thread thread_;
};

}  // namespace chat
