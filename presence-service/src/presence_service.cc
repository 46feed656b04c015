#include "presence/presence_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "common/status.h"

namespace chat::presence {

std::string SessionsKey(uint64_t user_id) { return "pres:" + std::to_string(user_id); }
std::string SessionOrderKey(uint64_t user_id) { return "presz:" + std::to_string(user_id); }
std::string LeaseKey(const std::string& gateway_id) { return "gwlease:" + gateway_id; }
std::string SessionField(const std::string& gateway_id, uint64_t session_id) {
  return gateway_id + "|" + std::to_string(session_id);
}

namespace {

using Cmd = std::vector<std::string>;

// KEYS: pres:<u>, presz:<u>. ARGV: field, device id, last active (unix ms), cap (0 = none). Stores the
// session and its score; returns every field idle longest first when the user now has more than
// `cap`, else nothing.
constexpr const char* kRegisterScript = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local cap = tonumber(ARGV[4])
if cap > 0 and redis.call('ZCARD', KEYS[2]) > cap then
  return redis.call('ZRANGE', KEYS[2], 0, -1)
end
return {}
)lua";

// Splits a hash field "<gateway_id>|<session_id>" (the gateway id itself may contain '|').
bool ParseField(const std::string& field, std::string* gateway_id, uint64_t* session_id) {
  auto bar = field.rfind('|');
  if (bar == std::string::npos || bar == 0 || bar + 1 == field.size()) return false;
  const char* begin = field.data() + bar + 1;
  const char* end = field.data() + field.size();
  auto [p, ec] = std::from_chars(begin, end, *session_id);
  if (ec != std::errc() || p != end) return false;
  gateway_id->assign(field, 0, bar);
  return true;
}

Status ValidateGatewayId(const std::string& gateway_id) {
  if (gateway_id.empty()) return InvalidArgument("gateway id is required");
  if (gateway_id.size() > kMaxGatewayIdChars) return InvalidArgument("gateway id is too long");
  return OkStatus();
}

Status ValidateSessions(const internal::RegisterRequest& req) {
  if (static_cast<size_t>(req.sessions_size()) > kMaxIdsPerCall)
    return InvalidArgument("at most " + std::to_string(kMaxIdsPerCall) + " sessions per call");
  for (const auto& s : req.sessions()) {
    if (s.user_id() == 0) return InvalidArgument("session user id is required");
    if (auto st = ValidateGatewayId(s.gateway_id()); !st.ok()) return st;
    if (s.device_id().size() > kMaxDeviceIdChars) return InvalidArgument("device id is too long");
  }
  return OkStatus();
}

// Runs a pipeline and maps transport failures and Redis error replies onto statuses.
Status RunPipeline(RedisClient& redis, const std::vector<Cmd>& cmds, std::vector<RedisReply>* replies,
                   const char* what) {
  auto r = redis.Pipeline(cmds);
  if (!r) return Unavailable("presence store unavailable");
  for (const auto& reply : *r) {
    if (reply.type == RedisReply::Type::kError) {
      spdlog::error("presence {}: redis error: {}", what, reply.str);
      return Internal("internal error");
    }
  }
  if (replies) *replies = std::move(*r);
  return OkStatus();
}

}  // namespace

grpc::Status PresenceServiceImpl::Register(grpc::ServerContext*, const internal::RegisterRequest* req, v1::Empty*) {
  return Guarded("Register", [&]() -> Status {
    if (auto st = ValidateSessions(*req); !st.ok()) return st;
    if (req->sessions_size() == 0) return OkStatus();
    std::vector<Cmd> cmds;
    std::unordered_set<uint64_t> users;
    std::unordered_set<std::string> gateways, fields;
    const int64_t now = NowMs();  // unix ms
    const std::string cap = std::to_string(limits_.presence.max_sessions_per_user);
    for (const auto& s : req->sessions()) {
      std::string field = SessionField(s.gateway_id(), s.session_id());
      const int64_t active = s.last_active_ms() > 0 ? std::min(s.last_active_ms(), now) : now;
      cmds.push_back({"EVAL", kRegisterScript, "2", SessionsKey(s.user_id()), SessionOrderKey(s.user_id()), field,
                      s.device_id(), std::to_string(active), cap});
      fields.insert(std::move(field));
      users.insert(s.user_id());
      gateways.insert(s.gateway_id());
    }
    const size_t registers = cmds.size();
    const std::string ttl = std::to_string(kSessionHashTtlSeconds);
    for (uint64_t u : users) {
      cmds.push_back({"EXPIRE", SessionsKey(u), ttl});
      cmds.push_back({"EXPIRE", SessionOrderKey(u), ttl});
    }
    // A registering gateway is alive now; NX keeps whatever lease it already has untouched.
    for (const auto& g : gateways)
      cmds.push_back({"SET", LeaseKey(g), "1", "PX", std::to_string(limits_.presence.presence_ttl_ms), "NX"});
    std::vector<RedisReply> replies;
    if (auto st = RunPipeline(redis_, cmds, &replies, "register"); !st.ok()) return st;
    std::vector<std::pair<uint64_t, std::vector<std::string>>> over;
    std::unordered_set<uint64_t> seen_over;
    for (size_t i = 0; i < registers; ++i) {
      const auto& r = replies[i];
      const uint64_t user = req->sessions(static_cast<int>(i)).user_id();
      if (r.type != RedisReply::Type::kArray || r.elements.empty() || !seen_over.insert(user).second) continue;
      std::vector<std::string> order;
      for (const auto& e : r.elements) order.push_back(e.str);
      over.emplace_back(user, std::move(order));
    }
    if (!over.empty()) EvictOverCap(over, fields);
    return OkStatus();
  });
}

void PresenceServiceImpl::EvictOverCap(const std::vector<std::pair<uint64_t, std::vector<std::string>>>& over,
                                       const std::unordered_set<std::string>& registering) {
  const size_t cap = limits_.presence.max_sessions_per_user;
  // Which gateways of these sessions still hold a lease.
  Cmd mget{"MGET"};
  std::unordered_map<std::string, size_t> gateway_index;
  for (const auto& [user, order] : over)
    for (const auto& field : order) {
      std::string gw;
      uint64_t sid = 0;
      if (ParseField(field, &gw, &sid) && gateway_index.emplace(gw, mget.size() - 1).second)
        mget.push_back(LeaseKey(gw));
    }
  std::vector<RedisReply> leases;
  if (mget.size() > 1 && (!RunPipeline(redis_, {mget}, &leases, "session cap leases").ok() ||
                          leases[0].elements.size() != mget.size() - 1)) {
    spdlog::warn("presence: session cap not enforced this time (leases unreadable); the next Register retries");
    return;
  }
  v1::Event kicked;
  kicked.mutable_kicked()->set_close_code(kCloseKicked);
  kicked.mutable_kicked()->set_reason("too many sessions for this user; the one idle longest was closed");
  const std::string event = kicked.SerializeAsString();
  for (const auto& [user, order] : over) {
    std::vector<std::pair<std::string, uint64_t>> live;  // (field, session id), idle longest first
    std::vector<std::string> forget, evict;
    for (const auto& field : order) {
      std::string gw;
      uint64_t sid = 0;
      if (!ParseField(field, &gw, &sid) || leases[0].elements[gateway_index.at(gw)].type == RedisReply::Type::kNil)
        forget.push_back(field);
      else if (!registering.count(field))
        live.emplace_back(field, sid);
    }
    size_t count = order.size() - forget.size();
    for (size_t i = 0; i < live.size() && count > cap; ++i, --count) evict.push_back(live[i].first);
    std::vector<Cmd> cmds;
    for (const auto& f : forget) {
      cmds.push_back({"HDEL", SessionsKey(user), f});
      cmds.push_back({"ZREM", SessionOrderKey(user), f});
    }
    const size_t first_evict = cmds.size();
    for (const auto& f : evict) {
      cmds.push_back({"ZREM", SessionOrderKey(user), f});
      cmds.push_back({"HDEL", SessionsKey(user), f});
    }
    if (cmds.empty()) continue;
    std::vector<RedisReply> removed;
    if (!RunPipeline(redis_, cmds, &removed, "session cap").ok()) continue;
    // Kick only what this call removed (ZREM answered 1): a concurrent Register kicks its own.
    std::vector<Cmd> kicks;
    for (size_t i = 0; i < evict.size(); ++i) {
      if (removed[first_evict + 2 * i].integer != 1) continue;
      std::string gw;
      uint64_t sid = 0;
      ParseField(evict[i], &gw, &sid);
      internal::Delivery d;
      d.add_user_ids(user);
      d.set_event(event);
      d.set_kick_session_id(sid);
      kicks.push_back({"PUBLISH", GatewayChannel(gw), d.SerializeAsString()});
    }
    if (!kicks.empty() && !redis_.Pipeline(kicks))
      spdlog::warn("presence: kick of {} session(s) over the cap not published", kicks.size());
    spdlog::info("presence: user {} over {} sessions: {} closed", user, cap, kicks.size());
  }
}

grpc::Status PresenceServiceImpl::Unregister(grpc::ServerContext*, const internal::RegisterRequest* req, v1::Empty*) {
  return Guarded("Unregister", [&]() -> Status {
    if (auto st = ValidateSessions(*req); !st.ok()) return st;
    if (req->sessions_size() == 0) return OkStatus();
    std::vector<Cmd> cmds;
    cmds.reserve(req->sessions_size());
    for (const auto& s : req->sessions()) {
      const std::string field = SessionField(s.gateway_id(), s.session_id());
      cmds.push_back({"HDEL", SessionsKey(s.user_id()), field});
      cmds.push_back({"ZREM", SessionOrderKey(s.user_id()), field});
    }
    return RunPipeline(redis_, cmds, nullptr, "unregister");
  });
}

grpc::Status PresenceServiceImpl::GatewayHeartbeat(grpc::ServerContext*, const internal::GatewayHeartbeatRequest* req,
                                                   v1::Empty*) {
  return Guarded("GatewayHeartbeat", [&]() -> Status {
    if (auto st = ValidateGatewayId(req->gateway_id()); !st.ok()) return st;
    uint32_t ttl = req->ttl_ms() == 0 ? limits_.presence.presence_ttl_ms : req->ttl_ms();
    if (ttl > kMaxLeaseTtlMs) return InvalidArgument("lease ttl is at most " + std::to_string(kMaxLeaseTtlMs) + " ms");
    return RunPipeline(redis_, {{"SET", LeaseKey(req->gateway_id()), "1", "PX", std::to_string(ttl)}}, nullptr,
                       "heartbeat");
  });
}

grpc::Status PresenceServiceImpl::Lookup(grpc::ServerContext*, const internal::LookupRequest* req,
                                         internal::LookupResult* res) {
  return Guarded("Lookup", [&]() -> Status {
    if (static_cast<size_t>(req->user_ids_size()) > kMaxIdsPerCall)
      return InvalidArgument("at most " + std::to_string(kMaxIdsPerCall) + " users per lookup");
    std::vector<uint64_t> users;
    {
      std::unordered_set<uint64_t> seen;
      for (uint64_t u : req->user_ids())
        if (u != 0 && seen.insert(u).second) users.push_back(u);
    }
    if (users.empty()) return OkStatus();

    std::vector<Cmd> cmds;
    cmds.reserve(users.size());
    for (uint64_t u : users) cmds.push_back({"HGETALL", SessionsKey(u)});
    std::vector<RedisReply> hashes;
    if (auto st = RunPipeline(redis_, cmds, &hashes, "lookup"); !st.ok()) return st;

    struct Entry {
      uint64_t user_id;
      const std::string* field;
      const std::string* device_id;
      std::string gateway_id;
      uint64_t session_id;
    };
    std::vector<Entry> entries;
    std::vector<Cmd> cleanup;  // HDEL of malformed fields and of sessions on gateways without a lease
    std::unordered_map<std::string, size_t> gateway_index;  // gateway id -> position in MGET
    Cmd mget{"MGET"};
    for (size_t i = 0; i < users.size(); ++i) {
      const auto& h = hashes[i];
      if (h.type != RedisReply::Type::kArray) continue;
      for (size_t k = 0; k + 1 < h.elements.size(); k += 2) {
        Entry e{users[i], &h.elements[k].str, &h.elements[k + 1].str, {}, 0};
        if (!ParseField(*e.field, &e.gateway_id, &e.session_id)) {
          cleanup.push_back({"HDEL", SessionsKey(e.user_id), *e.field});
          cleanup.push_back({"ZREM", SessionOrderKey(e.user_id), *e.field});
          continue;
        }
        if (gateway_index.emplace(e.gateway_id, mget.size() - 1).second) mget.push_back(LeaseKey(e.gateway_id));
        entries.push_back(std::move(e));
      }
    }
    if (!entries.empty()) {
      std::vector<RedisReply> leases;
      if (auto st = RunPipeline(redis_, {mget}, &leases, "lookup leases"); !st.ok()) return st;
      const auto& values = leases[0].elements;
      if (leases[0].type != RedisReply::Type::kArray || values.size() != mget.size() - 1) {
        spdlog::error("presence lookup: unexpected MGET reply");
        return Internal("internal error");
      }
      for (auto& e : entries) {
        bool alive = values[gateway_index.at(e.gateway_id)].type != RedisReply::Type::kNil;
        if (!alive) {
          cleanup.push_back({"HDEL", SessionsKey(e.user_id), *e.field});
          cleanup.push_back({"ZREM", SessionOrderKey(e.user_id), *e.field});
          continue;
        }
        auto* s = res->add_sessions();
        s->set_user_id(e.user_id);
        s->set_device_id(*e.device_id);
        s->set_gateway_id(std::move(e.gateway_id));
        s->set_session_id(e.session_id);
      }
    }
    // Best effort: a failed cleanup is retried by the next lookup of the same user.
    if (!cleanup.empty() && !redis_.Pipeline(cleanup))
      spdlog::warn("presence lookup: cleanup of {} stale sessions failed", cleanup.size());
    return OkStatus();
  });
}

}  // namespace chat::presence
