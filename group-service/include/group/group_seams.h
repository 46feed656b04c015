#pragma once
// The other services group-service talks to, behind the interfaces its tests fake (the friend checker
// is the shared one, common/friends.h). The real implementations are named for what they use and
// take their shard maps from ClusterConfig.
//
// Threads: every implementation is thread-safe (called from gRPC server threads concurrently).
// Every RPC carries a deadline (limits.common.rpc_deadline_ms).
#include <cstdint>
#include <vector>

#include "chat/internal/services.grpc.pb.h"
#include "chat/v1/client.pb.h"
#include "common/config.h"
#include "common/error.h"
#include "common/fanout.h"
#include "common/friends.h"
#include "common/grpc_util.h"

namespace chat::group {

// Profiles (user id, handle, display name; never a phone number) from account-service.
class ProfileSource {
 public:
  virtual ~ProfileSource() = default;
  // On OK, appends the profiles found (unknown users are simply missing) to *out. viewer 0: the
  // public profiles (what every member sees, e.g. in system notices). A viewer: the same, plus the
  // remark names that viewer gave (UserProfile.remark), for that viewer's eyes only.
  virtual Status GetProfiles(uint64_t viewer, const std::vector<uint64_t>& user_ids,
                             std::vector<v1::UserProfile>* out) = 0;
};

// The group conversation's membership as chat-service sees it (chat UpdateMembers, idempotent).
class ConversationMembership {
 public:
  virtual ~ConversationMembership() = default;
  // deadline_ms bounds the call. Called outside any transaction; calls for one group may overlap
  // and arrive out of order (chat orders them by request.membership_version).
  virtual Status UpdateMembers(const internal::UpdateMembersRequest& request, uint32_t deadline_ms) = 0;
};

// Public profiles: GetProfiles split by ShardOfUser, each account shard asked for the users it owns.
// A viewer's: GetProfilesFor on the viewer's account shard (where their remarks live; it gathers the
// profiles from the other shards).
class GrpcProfileSource : public ProfileSource {
 public:
  GrpcProfileSource(const std::vector<ShardConfig>& account_shards, const InternalTlsConfig& tls, uint32_t deadline_ms)
      : stubs_(account_shards, tls), deadline_ms_(deadline_ms) {}
  Status GetProfiles(uint64_t viewer, const std::vector<uint64_t>& user_ids,
                     std::vector<v1::UserProfile>* out) override;

 private:
  ShardedStubs<internal::AccountService> stubs_;
  uint32_t deadline_ms_;
};

// UpdateMembers on the chat shard ShardOfConversation(conversation_id).
class GrpcConversationMembership : public ConversationMembership {
 public:
  GrpcConversationMembership(const std::vector<ShardConfig>& chat_shards, const InternalTlsConfig& tls)
      : stubs_(chat_shards, tls) {}
  Status UpdateMembers(const internal::UpdateMembersRequest& request, uint32_t deadline_ms) override;

 private:
  ShardedStubs<internal::ChatService> stubs_;
};

}  // namespace chat::group
