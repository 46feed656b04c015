#include "common/friends.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "common/shard.h"
#include "common/status.h"

namespace chat {

namespace {

std::vector<internal::CheckFriendsRequest> Requests(uint64_t user_id, const std::vector<uint64_t>& others) {
  std::vector<internal::CheckFriendsRequest> reqs;
  for (size_t off = 0; off < others.size(); off += GrpcFriendChecker::kMaxIdsPerRequest) {
    internal::CheckFriendsRequest& req = reqs.emplace_back();
    req.set_user_id(user_id);
    const size_t end = std::min(others.size(), off + GrpcFriendChecker::kMaxIdsPerRequest);
    for (size_t i = off; i < end; ++i) req.add_other_ids(others[i]);
  }
  return reqs;
}

}  // namespace

Result<FriendSet> GrpcFriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) {
  if (stubs_.size() == 0) return Unavailable("no account shards configured");
  auto& stub = stubs_.at(ShardOfUser(user_id, stubs_.size()));
  FriendSet friends;
  for (const internal::CheckFriendsRequest& req : Requests(user_id, others)) {
    internal::CheckFriendsResult res;
    auto ctx = MakeContext(deadline_ms_);
    if (auto st = stub.CheckFriends(ctx.get(), req, &res); !st.ok()) return PeerFailure("account CheckFriends", st);
    friends.insert(res.friend_ids().begin(), res.friend_ids().end());
  }
  return friends;
}

void GrpcFriendChecker::FriendsAmongAsync(uint64_t user_id, std::vector<uint64_t> others, FriendsDone done) {
  if (stubs_.size() == 0) return done(Unavailable("no account shards configured"));
  if (others.empty()) return done(FriendSet{});
  // One call per request; the last completion answers. gRPC keeps nothing alive for us: the state
  // holds every context, request and result until then.
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    internal::CheckFriendsRequest req;
    internal::CheckFriendsResult res;
  };
  struct State {
    std::vector<Call> calls;
    std::atomic<size_t> pending{0};
    std::mutex mu;
    FriendSet friends;  // mu
    Status failure;     // mu: the first failure
    FriendsDone done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  for (auto& req : Requests(user_id, others))
    state->calls.push_back(Call{MakeContext(deadline_ms_), std::move(req), {}});
  state->pending = state->calls.size();
  auto& stub = stubs_.at(ShardOfUser(user_id, stubs_.size()));
  for (Call& call : state->calls) {
    stub.async()->CheckFriends(call.ctx.get(), &call.req, &call.res, [state, &call](grpc::Status st) {
      {
        std::lock_guard lk(state->mu);
        if (!st.ok() && state->failure.ok()) state->failure = PeerFailure("account CheckFriends", st);
        if (st.ok()) state->friends.insert(call.res.friend_ids().begin(), call.res.friend_ids().end());
      }
      if (state->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      if (!state->failure.ok()) return state->done(state->failure);
      state->done(std::move(state->friends));
    });
  }
}

bool CachingFriendChecker::KnownFriends(uint64_t user_id, uint64_t other_id) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  auto it = positive_.find(std::minmax(user_id, other_id));
  if (it == positive_.end()) return false;
  if (it->second > now) return true;
  positive_.erase(it);
  return false;
}

void CachingFriendChecker::Remember(uint64_t a, uint64_t b, std::chrono::steady_clock::time_point now) {
  std::lock_guard lk(mu_);
  if (positive_.size() >= max_entries_) positive_.clear();
  positive_[std::minmax(a, b)] = now + ttl_;
}

std::vector<uint64_t> CachingFriendChecker::SplitKnown(uint64_t user_id, const std::vector<uint64_t>& others,
                                                       FriendSet* known) {
  std::vector<uint64_t> ask;
  for (uint64_t o : others) {
    if (KnownFriends(user_id, o))
      known->insert(o);
    else
      ask.push_back(o);
  }
  return ask;
}

Result<FriendSet> CachingFriendChecker::FriendsAmong(uint64_t user_id, const std::vector<uint64_t>& others) {
  const auto now = std::chrono::steady_clock::now();
  FriendSet friends;
  std::vector<uint64_t> ask = SplitKnown(user_id, others, &friends);
  if (ask.empty()) return friends;
  Result<FriendSet> found = inner_.FriendsAmong(user_id, ask);
  if (!found.ok()) return found.status();
  for (uint64_t o : *found) {
    Remember(user_id, o, now);
    friends.insert(o);
  }
  return friends;
}

void CachingFriendChecker::FriendsAmongAsync(uint64_t user_id, std::vector<uint64_t> others, FriendsDone done) {
  const auto now = std::chrono::steady_clock::now();
  FriendSet known;
  std::vector<uint64_t> ask = SplitKnown(user_id, others, &known);
  if (ask.empty()) return done(std::move(known));
  inner_.FriendsAmongAsync(
      user_id, std::move(ask),
      [this, user_id, now, known = std::move(known), done = std::move(done)](Result<FriendSet> found) mutable {
        if (!found.ok()) return done(found.status());
        for (uint64_t o : *found) {
          Remember(user_id, o, now);
          known.insert(o);
        }
        done(std::move(known));
      });
}

}  // namespace chat
