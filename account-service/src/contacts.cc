// Contacts of account-service beyond request and accept: remark names, labels, blocks, one-way delete, and
// profiles as one viewer sees them (protocol.md 8.29-8.31). Each edge and block lives on its owner's
// shard (migrations 0001, 0010). A change that ends a cached "may message" answer in chat-service
// (block, unblock, delete) is told to the chat replicas before it is answered (ForgetOnChatReplicas),
// and the owner's other devices hear of every change (ContactUpdatedItem, through the outbox).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "account/account_service.h"
#include "account/secure_random.h"
#include "account/validation.h"
#include "common/friends.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/text_policy.h"

namespace chat::account {

Status AccountServiceImpl::CheckContactPair(uint64_t me, uint64_t other) const {
  if (!ValidUserId(me)) return InvalidArgument("origin user_id is required");
  if (!ValidUserId(other)) return InvalidArgument("user_id is required");
  if (me == other) return InvalidArgument("user_id is your own");
  if (!IsLocal(me)) return InvalidArgument("user_id belongs to another account shard");
  return OkStatus();
}

v1::Contact AccountServiceImpl::ContactOf(uint64_t me, const EdgeRow& edge, v1::UserProfile profile,
                                          bool blocked) const {
  v1::Contact c;
  profile.set_remark(edge.remark);
  *c.mutable_profile() = std::move(profile);
  c.set_conversation_id(DirectConversationId(me, edge.friend_id));
  c.set_since_ms(edge.since_ms);
  c.set_blocked(blocked);
  return c;
}

void AccountServiceImpl::ForgetOnChatReplicas(uint64_t me, uint64_t other) {
  if (config_.chat.empty()) return;
  const uint32_t shard =
      ShardOfConversation(DirectConversationId(me, other), static_cast<uint32_t>(config_.chat.size()));
  internal::ContactChange change;
  change.set_user_id(me);
  change.set_other_id(other);
  for (uint32_t r = chat_replica_begin_[shard]; r < chat_replica_begin_[shard + 1]; ++r) {
    auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
    v1::Empty empty;
    auto st = chat_replicas_.at(r).ForgetContacts(ctx.get(), change, &empty);
    if (!st.ok())
      spdlog::warn(
          "ForgetContacts on chat shard {} replica {} failed ({}): its cached answers for the pair last "
          "until they expire",
          shard, r - chat_replica_begin_[shard], st.error_message());
  }
}

FanoutItem AccountServiceImpl::ContactUpdatedItem(const internal::Origin& origin, v1::Contact contact, bool removed) {
  FanoutItem it;
  it.user_ids = {origin.user_id()};
  it.skip_session_id = origin.session_id();  // that session has the reply
  auto* e = it.event.mutable_contact_updated();
  *e->mutable_contact() = std::move(contact);
  e->set_removed(removed);
  return it;
}

grpc::Status AccountServiceImpl::SetRemark(grpc::ServerContext*, const internal::ContactRequest* req,
                                           v1::Contact* res) {
  return Guarded("SetRemark", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const uint64_t other = req->user_id();
    if (auto st = CheckContactPair(me, other); !st.ok()) return st;
    std::string remark = req->remark();
    if (auto st = NormalizeRemark(&remark, limits_.account.max_remark_chars); !st.ok()) return st;
    ProfileMap profiles;
    if (auto st = FetchProfiles({other}, &profiles); !st.ok()) return st;
    if (!profiles.count(other) || profiles[other].deleted()) return NotFound("not in your contacts");
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          if (!store::SetRemark(t, me, other, remark)) return NotFound("not in your contacts");
          const auto edges = store::EdgesAmong(t, me, {other});
          if (edges.empty()) return NotFound("not in your contacts");
          *res = ContactOf(me, edges[0], profiles[other], !store::BlockedAmong(t, me, {other}).empty());
          items.push_back(ContactUpdatedItem(req->origin(), *res, false));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "SetRemark");
    if (!st.ok()) return st;
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::SetBlocked(grpc::ServerContext*, const internal::ContactRequest* req, v1::Empty*) {
  return Guarded("SetBlocked", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const uint64_t other = req->user_id();
    if (auto st = CheckContactPair(me, other); !st.ok()) return st;
    ProfileMap profiles;
    if (auto st = FetchProfiles({other}, &profiles); !st.ok()) return st;
    // A deleted account may still be unblocked (its block row outlives it); never newly blocked.
    if (!profiles.count(other) || (req->blocked() && profiles[other].deleted())) return NotFound("no such user");
    const int64_t now = now_ms_();
    std::vector<FanoutItem> items;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          items.clear();
          const bool was_blocked = !store::BlockedAmong(t, me, {other}).empty();
          if (was_blocked == req->blocked()) return OkStatus();  // already so: nothing to announce
          if (req->blocked())
            store::Block(t, me, other, now);
          else
            store::Unblock(t, me, other);
          const auto edges = store::EdgesAmong(t, me, {other});
          v1::Contact c;
          if (!edges.empty()) {
            c = ContactOf(me, edges[0], profiles[other], req->blocked());
          } else {
            *c.mutable_profile() = profiles[other];
            c.set_blocked(req->blocked());
          }
          items.push_back(ContactUpdatedItem(req->origin(), std::move(c), false));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "SetBlocked");
    if (!st.ok()) return st;
    if (items.empty()) return OkStatus();
    ForgetOnChatReplicas(me, other);
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::DeleteContact(grpc::ServerContext*, const internal::ContactRequest* req, v1::Empty*) {
  return Guarded("DeleteContact", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const uint64_t other = req->user_id();
    if (auto st = CheckContactPair(me, other); !st.ok()) return st;
    bool present = false;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          present = !store::EdgesAmong(t, me, {other}).empty();
          return OkStatus();
        },
        "DeleteContact.read");
    if (!st.ok()) return st;
    if (!present) return NotFound("not in your contacts");

    // 1. Their edge learns of it first: until this is done nothing changed, and once it is, neither
    //    may message the other (their messages to me already fail on my edge once it is gone).
    internal::FriendEdge edge;
    edge.set_user_id(other);
    edge.set_friend_id(me);
    const uint32_t owner = ShardOfUser(other, shard_count());
    if (owner == shard_) {
      st = WithTransaction(
          pool_,
          [&](pqxx::work& t) {
            store::MarkPeerRemoved(t, other, me);
            return OkStatus();
          },
          "PeerRemoved");
    } else {
      auto ctx = MakeContext(limits_.common.rpc_deadline_ms);
      v1::Empty empty;
      auto peer = peers_.at(owner).PeerRemoved(ctx.get(), edge, &empty);
      if (!peer.ok()) spdlog::warn("PeerRemoved on account shard {} failed: {}", owner, peer.error_message());
      st = peer.ok() ? OkStatus() : Unavailable("could not delete the contact right now; retry");
    }
    if (!st.ok()) return st;

    // 2. My edge goes, with a pending request from them (a new one may reconnect us), announced.
    std::vector<FanoutItem> items;
    st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          items.clear();
          store::DeleteEdge(t, me, other);
          store::DeleteRequest(t, me, other);
          store::RemoveFromLabels(t, me, other);
          v1::Contact gone;
          gone.mutable_profile()->set_user_id(other);
          items.push_back(ContactUpdatedItem(req->origin(), std::move(gone), true));
          RecordEvents(t, &items);
          return OkStatus();
        },
        "DeleteContact");
    if (!st.ok()) return st;
    ForgetOnChatReplicas(me, other);
    events_.Publish(std::move(items));
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::PeerRemoved(grpc::ServerContext*, const internal::FriendEdge* req, v1::Empty*) {
  return Guarded("PeerRemoved", [&]() -> Status {
    if (!ValidUserId(req->user_id()) || !ValidUserId(req->friend_id()))
      return InvalidArgument("user_id and friend_id are required");
    if (!IsLocal(req->user_id())) return InvalidArgument("user_id belongs to another account shard");
    return WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          store::MarkPeerRemoved(t, req->user_id(), req->friend_id());
          return OkStatus();
        },
        "PeerRemoved");
  });
}

namespace {

constexpr int kInsertLabelAttempts = 4;

v1::Label ToLabel(const LabelRow& l) {
  v1::Label out;
  out.set_label_id(l.label_id);
  out.set_name(l.name);
  for (uint64_t id : l.member_ids) out.add_member_ids(id);
  return out;
}

}  // namespace

grpc::Status AccountServiceImpl::SetLabel(grpc::ServerContext*, const internal::SetLabelRequest* req, v1::Label* res) {
  return Guarded("SetLabel", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const auto& r = req->request();
    if (!ValidUserId(me)) return InvalidArgument("origin user_id is required");
    if (!IsLocal(me)) return InvalidArgument("user_id belongs to another account shard");
    std::string name = r.name();
    if (auto st = NormalizeText("label name", {TextKind::kName, 1, limits_.account.max_label_name_chars}, &name);
        !st.ok())
      return st;
    if (r.member_ids_size() > static_cast<int>(limits_.account.max_friends))
      return InvalidArgument("a label holds at most " + std::to_string(limits_.account.max_friends) + " contacts");
    std::vector<uint64_t> members;
    for (uint64_t id : r.member_ids()) {
      if (!ValidUserId(id)) return InvalidArgument("member_ids must be user ids");
      members.push_back(id);
    }
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());
    const int64_t now = now_ms_();
    LabelRow stored;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          // The owner's row serializes their label changes (the count and name checks below).
          if (!store::LockUser(t, me)) return NotFound("your account was not found");
          if (store::EdgesAmong(t, me, members).size() != members.size())
            return InvalidArgument("member_ids may name only your contacts");
          const auto named = store::LabelNamed(t, me, name);
          uint64_t id = r.label_id();
          if (named && *named != id) return AlreadyExists("you already have a label with this name");
          if (id == 0) {
            if (store::LabelCount(t, me) >= int64_t{limits_.account.max_labels_per_user})
              return FailedPrecondition("label limit of " + std::to_string(limits_.account.max_labels_per_user) +
                                        " reached");
            for (int i = 0; i < kInsertLabelAttempts && id == 0; ++i) {
              const uint64_t fresh = RandomU64() >> 1;
              if (fresh != 0 && store::InsertLabel(t, me, fresh, name, now)) id = fresh;
            }
            if (id == 0) return Unavailable("could not create the label right now; retry");
          } else if (!store::RenameLabel(t, me, id, name)) {
            return NotFound("no such label");
          }
          store::SetLabelMembers(t, me, id, members);
          stored = LabelRow{id, name, members};
          return OkStatus();
        },
        "SetLabel");
    if (!st.ok()) return st;
    *res = ToLabel(stored);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::DeleteLabel(grpc::ServerContext*, const internal::DeleteLabelRequest* req,
                                             v1::Empty*) {
  return Guarded("DeleteLabel", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    if (!IsLocal(req->user_id())) return InvalidArgument("user_id belongs to another account shard");
    if (req->label_id() == 0) return InvalidArgument("label_id is required");
    return WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          return store::DeleteLabel(t, req->user_id(), req->label_id()) ? OkStatus() : NotFound("no such label");
        },
        "DeleteLabel");
  });
}

grpc::Status AccountServiceImpl::ListLabels(grpc::ServerContext*, const internal::UserIdRequest* req,
                                            v1::LabelsResult* res) {
  return Guarded("ListLabels", [&]() -> Status {
    if (!ValidUserId(req->user_id())) return InvalidArgument("user_id is required");
    std::vector<LabelRow> labels;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          labels = store::LabelsOf(t, req->user_id());
          return OkStatus();
        },
        "ListLabels");
    if (!st.ok()) return st;
    for (const LabelRow& l : labels) *res->add_labels() = ToLabel(l);
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::ListSentFriendRequests(grpc::ServerContext*, const internal::UserIdRequest* req,
                                                        v1::FriendRequestsResult* res) {
  return Guarded("ListSentFriendRequests", [&]() -> Status {
    const uint64_t me = req->user_id();
    if (!ValidUserId(me)) return InvalidArgument("user_id is required");
    const int64_t min_created = LiveRequestsSince(now_ms_());
    std::vector<RequestRow> rows;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          rows = store::LiveRequestsFrom(t, me, min_created, kMaxListedFriendRequests);
          return OkStatus();
        },
        "ListSentFriendRequests");
    if (!st.ok()) return st;
    std::vector<uint64_t> targets;
    for (const auto& r : rows) targets.push_back(r.to_user);
    ProfileMap profiles;
    if (st = LocalProfiles(targets, &profiles); !st.ok()) return st;  // requests live on their targets' shard
    for (const auto& r : rows) {
      auto it = profiles.find(r.to_user);
      if (it == profiles.end() || it->second.deleted()) continue;
      auto* out = res->add_requests();
      *out = ToFriendRequest(r);
      *out->mutable_to() = it->second;
    }
    return OkStatus();
  });
}

grpc::Status AccountServiceImpl::IgnoreFriendRequest(grpc::ServerContext*,
                                                     const internal::AcceptFriendRequestRequest* req, v1::Empty*) {
  return Guarded("IgnoreFriendRequest", [&]() -> Status {
    const uint64_t me = req->origin().user_id();
    const uint64_t from = req->from_user_id();
    if (auto st = CheckContactPair(me, from); !st.ok()) return st;
    const int64_t min_created = LiveRequestsSince(now_ms_());
    return WithTransaction(
        pool_,
        [&](pqxx::work& t) -> Status {
          if (!store::LockLiveRequest(t, me, from, min_created))
            return NotFound("no pending friend request from this user");
          store::DeleteRequest(t, me, from);
          return OkStatus();
        },
        "IgnoreFriendRequest");
  });
}

grpc::Status AccountServiceImpl::GetProfilesFor(grpc::ServerContext*, const internal::ProfilesForRequest* req,
                                                v1::ProfilesResult* res) {
  return Guarded("GetProfilesFor", [&]() -> Status {
    const uint64_t viewer = req->viewer_id();
    if (!ValidUserId(viewer)) return InvalidArgument("viewer_id is required");
    if (!IsLocal(viewer)) return InvalidArgument("viewer_id belongs to another account shard");
    if (req->request().user_ids_size() > kMaxIdsPerRequest)
      return InvalidArgument("at most " + std::to_string(kMaxIdsPerRequest) + " user ids per request");
    std::vector<uint64_t> ids;
    std::unordered_set<uint64_t> seen;
    for (uint64_t id : req->request().user_ids())
      if (ValidUserId(id) && seen.insert(id).second) ids.push_back(id);
    ProfileMap found;
    if (auto st = FetchProfiles(ids, &found); !st.ok()) return st;
    std::vector<EdgeRow> edges;
    auto st = WithTransaction(
        pool_,
        [&](pqxx::work& t) {
          edges = store::EdgesAmong(t, viewer, ids);
          return OkStatus();
        },
        "GetProfilesFor");
    if (!st.ok()) return st;
    for (const EdgeRow& e : edges) {
      auto it = found.find(e.friend_id);
      if (it != found.end() && !it->second.deleted()) it->second.set_remark(e.remark);
    }
    for (uint64_t id : ids) {
      auto it = found.find(id);
      if (it != found.end()) *res->add_profiles() = std::move(it->second);
    }
    return OkStatus();
  });
}

}  // namespace chat::account
