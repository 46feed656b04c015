#include "common/fanout.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/events.h"
#include "common/shard.h"

namespace chat {

GrpcPresenceDirectory::GrpcPresenceDirectory(const std::vector<ShardConfig>& shards, const InternalTlsConfig& tls,
                                             uint32_t deadline_ms)
    : stubs_(shards, tls), deadline_ms_(deadline_ms) {}

bool GrpcPresenceDirectory::Lookup(const std::vector<uint64_t>& user_ids, std::vector<internal::SessionRef>* out) {
  if (stubs_.size() == 0) return true;  // no presence shards configured: nobody can be online
  // Per shard, requests of at most kMaxIdsPerLookup ids (presence refuses big ones), all in flight.
  struct Call {
    uint32_t shard = 0;
    internal::LookupRequest req;
    internal::LookupResult res;
    std::unique_ptr<grpc::ClientContext> ctx;
    grpc::Status status;
  };
  std::vector<std::vector<size_t>> open(stubs_.size());  // shard -> index of its last call
  std::deque<Call> calls;                                // stable addresses
  for (uint64_t u : user_ids) {
    const uint32_t s = ShardOfUser(u, stubs_.size());
    if (open[s].empty() || static_cast<size_t>(calls[open[s].back()].req.user_ids_size()) >= kMaxIdsPerLookup) {
      open[s].push_back(calls.size());
      calls.emplace_back().shard = s;
    }
    calls[open[s].back()].req.add_user_ids(u);
  }
  if (calls.empty()) return true;
  if (calls.size() == 1) {
    // One request (one presence shard, as most rounds are): the blocking call on this thread costs
    // no hand-off to a gRPC callback thread.
    Call& c = calls.front();
    c.ctx = MakeContext(deadline_ms_);
    c.status = stubs_.at(c.shard).Lookup(c.ctx.get(), c.req, &c.res);
  } else {
    // Every request in flight at once; the last callback wakes this thread. Every call has a
    // deadline, so every callback runs.
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = calls.size();
    for (Call& c : calls) {
      c.ctx = MakeContext(deadline_ms_);
      stubs_.at(c.shard).async()->Lookup(c.ctx.get(), &c.req, &c.res, [&, call = &c](grpc::Status st) {
        std::lock_guard lk(mu);
        call->status = std::move(st);
        if (--pending == 0) cv.notify_one();
      });
    }
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return pending == 0; });
  }
  bool ok = true;
  for (Call& c : calls) {
    if (!c.status.ok()) {
      spdlog::warn("presence lookup of {} users on shard {} failed: {}", c.req.user_ids_size(), c.shard,
                   c.status.error_message());
      ok = false;
      continue;
    }
    for (auto& r : *c.res.mutable_sessions()) out->push_back(std::move(r));
  }
  return ok;
}

bool RedisDeliveryPublisher::Publish(const std::vector<std::pair<std::string, std::string>>& messages) {
  if (messages.empty()) return true;
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(messages.size());
  for (const auto& [ch, payload] : messages) cmds.push_back({"PUBLISH", ch, payload});
  return redis_.Pipeline(cmds).has_value();
}

size_t Fanout::Deliver(const std::vector<FanoutItem>& items, bool* ok) {
  if (ok) *ok = true;
  std::vector<uint64_t> all;
  bool any_revocation = false;
  {
    std::unordered_set<uint64_t> seen;
    for (const auto& it : items) {
      any_revocation |= it.revocation.has_value();
      if (it.revocation) continue;  // broadcast: presence is not asked
      for (uint64_t u : it.user_ids)
        if (seen.insert(u).second) all.push_back(u);
    }
  }
  if (all.empty() && !any_revocation) return 0;
  std::vector<internal::SessionRef> sessions;
  if (!all.empty() && !presence_.Lookup(all, &sessions) && sessions.empty()) {
    if (ok) *ok = false;
    return 0;
  }
  // user -> gateways holding at least one session of that user
  std::unordered_map<uint64_t, std::vector<const std::string*>> where;
  for (const auto& s : sessions) {
    auto& v = where[s.user_id()];
    bool dup = false;
    for (auto* g : v) dup |= (*g == s.gateway_id());
    if (!dup) v.push_back(&s.gateway_id());
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& it : items) {
    if (it.revocation) {
      if (!it.user_ids.empty()) out.emplace_back(kRevocationChannel, ToDelivery(it).SerializeAsString());
      continue;
    }
    std::map<std::string, internal::Delivery> per_gateway;
    std::unordered_set<uint64_t> item_users;
    for (uint64_t u : it.user_ids) {
      if (!item_users.insert(u).second) continue;  // a repeated id must not mean a repeated push
      auto w = where.find(u);
      if (w == where.end()) continue;
      for (const std::string* gw : w->second) per_gateway[*gw].add_user_ids(u);
    }
    if (per_gateway.empty()) continue;
    std::string event_bytes = it.event.SerializeAsString();
    for (auto& [gw, d] : per_gateway) {
      d.set_event(event_bytes);
      d.set_skip_session_id(it.skip_session_id);
      d.set_conversation_id(it.conversation_id);
      out.emplace_back(GatewayChannel(gw), d.SerializeAsString());
    }
  }
  if (!publisher_.Publish(out)) {
    spdlog::warn("fanout: publish of {} deliveries failed; clients will catch up by sync", out.size());
    if (ok) *ok = false;
    return 0;
  }
  return out.size();
}

}  // namespace chat
