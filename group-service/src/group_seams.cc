#include "group/group_seams.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/shard.h"
#include "common/status.h"

namespace chat::group {

namespace {
// account-service answers at most this many ids per request; larger asks are split.
constexpr int kMaxIdsPerAccountRequest = 1000;
}  // namespace

Status GrpcProfileSource::GetProfiles(uint64_t viewer, const std::vector<uint64_t>& user_ids,
                                      std::vector<v1::UserProfile>* out) {
  if (user_ids.empty()) return OkStatus();
  if (stubs_.size() == 0) return Unavailable("no account shards configured");
  auto ask = [&](uint32_t shard, const std::vector<uint64_t>& ids) -> Status {
    for (size_t off = 0; off < ids.size(); off += kMaxIdsPerAccountRequest) {
      v1::GetProfilesRequest req;
      for (size_t i = off; i < std::min(ids.size(), off + kMaxIdsPerAccountRequest); ++i) req.add_user_ids(ids[i]);
      v1::ProfilesResult res;
      auto ctx = MakeContext(deadline_ms_);
      grpc::Status st;
      if (viewer == 0) {
        st = stubs_.at(shard).GetProfiles(ctx.get(), req, &res);
      } else {
        internal::ProfilesForRequest for_req;
        for_req.set_viewer_id(viewer);
        *for_req.mutable_request() = std::move(req);
        st = stubs_.at(shard).GetProfilesFor(ctx.get(), for_req, &res);
      }
      if (!st.ok()) return PeerFailure(viewer == 0 ? "account GetProfiles" : "account GetProfilesFor", st);
      for (auto& p : *res.mutable_profiles()) out->push_back(std::move(p));
    }
    return OkStatus();
  };
  if (viewer != 0) return ask(ShardOfUser(viewer, stubs_.size()), user_ids);
  std::vector<std::vector<uint64_t>> per_shard(stubs_.size());
  for (uint64_t u : user_ids) per_shard[ShardOfUser(u, stubs_.size())].push_back(u);
  for (uint32_t s = 0; s < stubs_.size(); ++s)
    if (auto st = ask(s, per_shard[s]); !st.ok()) return st;
  return OkStatus();
}

Status GrpcConversationMembership::UpdateMembers(const internal::UpdateMembersRequest& request, uint32_t deadline_ms) {
  if (stubs_.size() == 0) return Unavailable("no chat shards configured");
  internal::UpdateMembersResult res;
  auto ctx = MakeContext(deadline_ms);
  auto st =
      stubs_.at(ShardOfConversation(request.conversation_id(), stubs_.size())).UpdateMembers(ctx.get(), request, &res);
  if (!st.ok()) return PeerFailure("chat UpdateMembers", st);
  return OkStatus();
}

}  // namespace chat::group
