#include "common/friends.h"

#include <algorithm>
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

void GrpcFriendChecker::InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) {
  if (stubs_.size() == 0) return done(Unavailable("no account shards configured"));
  // gRPC keeps nothing alive for us: the state holds the context, request and result until then.
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    internal::CheckFriendsRequest req;
    internal::CheckFriendsResult res;
    InboundDone done;
  };
  auto call = std::make_shared<Call>();
  call->ctx = MakeContext(deadline_ms_);
  call->req.set_user_id(recipient);
  call->req.add_other_ids(sender);
  call->req.set_inbound(true);
  call->done = std::move(done);
  auto& stub = stubs_.at(ShardOfUser(recipient, stubs_.size()));
  stub.async()->CheckFriends(call->ctx.get(), &call->req, &call->res, [call, sender](grpc::Status st) {
    if (!st.ok()) return call->done(PeerFailure("account CheckFriends", st));
    const auto& rejected = call->res.rejected_ids();
    const auto& accepted = call->res.friend_ids();
    if (std::find(rejected.begin(), rejected.end(), sender) != rejected.end()) return call->done(Inbound::kRejected);
    call->done(std::find(accepted.begin(), accepted.end(), sender) != accepted.end() ? Inbound::kAccepted
                                                                                     : Inbound::kNotFriend);
  });
}

bool CachingFriendChecker::KnownAccepted(uint64_t recipient, uint64_t sender) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  auto it = accepted_.find({recipient, sender});
  if (it == accepted_.end()) return false;
  if (it->second > now) return true;
  accepted_.erase(it);
  return false;
}

void CachingFriendChecker::InboundAsync(uint64_t recipient, uint64_t sender, InboundDone done) {
  if (KnownAccepted(recipient, sender)) return done(Inbound::kAccepted);
  const auto now = std::chrono::steady_clock::now();
  uint64_t generation = 0;
  {
    std::lock_guard lk(mu_);
    generation = generation_;
  }
  inner_.InboundAsync(recipient, sender,
                      [this, recipient, sender, now, generation, done = std::move(done)](Result<Inbound> r) {
                        if (r.ok() && *r == Inbound::kAccepted && ttl_.count() > 0) {
                          std::lock_guard lk(mu_);
                          if (generation == generation_) {  // no change arrived while it was asked
                            if (accepted_.size() >= max_entries_) accepted_.clear();
                            accepted_[{recipient, sender}] = now + ttl_;
                          }
                        }
                        done(std::move(r));
                      });
}

void CachingFriendChecker::Forget(uint64_t a, uint64_t b) {
  std::lock_guard lk(mu_);
  ++generation_;
  accepted_.erase({a, b});
  accepted_.erase({b, a});
}

void CachingFriendChecker::Clear() {
  std::lock_guard lk(mu_);
  ++generation_;
  accepted_.clear();
}

}  // namespace chat
