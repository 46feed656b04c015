#include "group/group_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "common/shard.h"
#include "common/status.h"
#include "common/text_policy.h"

namespace chat::group {

namespace {

constexpr size_t kMaxNamesInNotice = 10;
constexpr int kResyncsPerListMyGroups = 3;

const char kGroupNotFound[] = "group not found";
const char kNotFriends[] = "can only add friends to a group";

std::string CapMessage(uint32_t max_members) {
  return "a group holds at most " + std::to_string(max_members) + " members";
}

// "A, B, C" or "A, B, ... J and 3 others".
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  size_t shown = std::min(names.size(), kMaxNamesInNotice);
  for (size_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " others";
  return out;
}

// Distinct, non-zero ids in request order.
Status DistinctIds(const google::protobuf::RepeatedField<uint64_t>& ids, bool reject_duplicates,
                   std::vector<uint64_t>* out) {
  std::unordered_set<uint64_t> seen;
  for (uint64_t id : ids) {
    if (id == 0) return InvalidArgument("user id 0 is not a user");
    // Ids are positive 63-bit (bigint columns): a larger one names nobody and must not reach SQL.
    if (id > static_cast<uint64_t>(INT64_MAX)) return InvalidArgument("user ids are below 2^63");
    if (!seen.insert(id).second) {
      if (reject_duplicates) return InvalidArgument("member ids must be distinct");
      continue;
    }
    out->push_back(id);
  }
  return OkStatus();
}

}  // namespace

Status ValidateClientRequestId(const std::string& id) {
  if (id.size() > kMaxClientRequestIdChars)
    return InvalidArgument("client_request_id is at most " + std::to_string(kMaxClientRequestIdChars) + " characters");
  for (char c : id)
    if (c < 0x20 || c > 0x7E) return InvalidArgument("client_request_id must be printable ASCII");
  return OkStatus();
}

Status NormalizeGroupName(std::string* name, uint32_t max_chars) {
  return NormalizeText("group name", {TextKind::kName, 0, max_chars}, name);
}

GroupServiceImpl::GroupServiceImpl(GroupServiceDeps deps) : deps_(deps), rng_(std::random_device{}()) {
  if (!deps_.pool || !deps_.limits || !deps_.friends || !deps_.profiles || !deps_.chat || !deps_.events ||
      deps_.shard_count == 0 || deps_.shard >= deps_.shard_count)
    throw std::invalid_argument("GroupServiceImpl: incomplete dependencies");
}

uint64_t GroupServiceImpl::MintGroupId() {
  std::lock_guard lk(rng_mu_);
  for (;;) {
    uint64_t id = rng_() >> 1;  // positive 63-bit
    if (id != 0 && ShardOfGroup(id, deps_.shard_count) == deps_.shard) return id;
  }
}

bool GroupServiceImpl::OwnsGroup(uint64_t group_id) const {
  return group_id != 0 && group_id <= static_cast<uint64_t>(INT64_MAX) &&
         ShardOfGroup(group_id, deps_.shard_count) == deps_.shard;
}

Status GroupServiceImpl::CheckFriends(uint64_t user_id, const std::vector<uint64_t>& others) {
  Result<FriendSet> friends = deps_.friends->FriendsAmong(user_id, others);
  if (!friends.ok()) return friends.status();
  for (uint64_t o : others)
    if (!friends->count(o)) return PermissionDenied(kNotFriends);
  return OkStatus();
}

Status GroupServiceImpl::Names(const std::vector<uint64_t>& users, std::vector<std::string>* names) {
  std::vector<v1::UserProfile> profiles;
  if (auto st = deps_.profiles->GetProfiles(/*viewer=*/0, users, &profiles); !st.ok()) return st;
  std::unordered_map<uint64_t, const v1::UserProfile*> by_id;
  for (const auto& p : profiles) by_id[p.user_id()] = &p;
  names->clear();
  for (uint64_t u : users) {
    auto it = by_id.find(u);
    if (it != by_id.end() && !it->second->display_name().empty())
      names->push_back(it->second->display_name());
    else if (it != by_id.end() && !it->second->handle().empty())
      names->push_back(it->second->handle());
    else
      names->push_back("someone");
  }
  return OkStatus();
}

internal::OutboxGroupChange GroupServiceImpl::Change(const GroupRow& group, v1::GroupChangeKind kind, uint64_t actor,
                                                     const std::vector<uint64_t>& user_ids,
                                                     const std::vector<uint64_t>& to, uint64_t skip_session_id,
                                                     const ChatDelta& delta) {
  internal::OutboxGroupChange change;
  change.set_group_id(group.id);
  change.set_version(group.version);
  for (uint64_t u : delta.add) change.add_add_user_ids(u);
  for (uint64_t u : delta.remove) change.add_remove_user_ids(u);
  change.set_actor_id(delta.actor_id);
  change.set_notice(delta.notice);
  v1::Event event;
  auto* changed = event.mutable_group_changed();
  group.ToProto(changed->mutable_group());
  changed->set_kind(kind);
  changed->set_actor_id(actor);
  for (uint64_t u : user_ids) changed->add_user_ids(u);
  internal::Delivery* d = change.mutable_event();
  for (uint64_t u : to) d->add_user_ids(u);
  d->set_event(event.SerializeAsString());
  d->set_skip_session_id(skip_session_id);
  d->set_conversation_id(GroupConversationId(group.id));
  return change;
}

uint64_t GroupServiceImpl::Record(pqxx::work& txn, const internal::OutboxGroupChange& change) {
  if (!deps_.outbox) return 0;
  return deps_.outbox->Append(txn, kOutboxGroupChangeTopic, change.SerializeAsString());
}

bool GroupServiceImpl::Announce(const internal::OutboxGroupChange& change, uint64_t outbox_id, bool relayed) {
  const ChatDelta delta{{change.add_user_ids().begin(), change.add_user_ids().end()},
                        {change.remove_user_ids().begin(), change.remove_user_ids().end()},
                        change.actor_id(),
                        change.notice()};
  if (!SyncChat(change.group_id(), change.version(), &delta, /*short_deadline=*/relayed).ok())
    return false;  // relayed again later
  FanoutItem item;
  if (!FromDelivery(change.event(), &item)) {
    spdlog::error("group {}: change v{} holds no valid event", change.group_id(), change.version());
    if (deps_.outbox && outbox_id) deps_.outbox->Ack({outbox_id});  // nothing to announce, ever
    return true;
  }
  item.outbox_id = outbox_id;
  std::vector<FanoutItem> items;
  items.push_back(std::move(item));
  deps_.events->Publish(std::move(items));
  return true;
}

Status GroupServiceImpl::SyncChat(uint64_t group_id, int64_t version, const ChatDelta* delta, bool short_deadline) {
  const uint32_t deadline_ms = short_deadline ? std::max<uint32_t>(deps_.limits->common.rpc_deadline_ms / 5, 200)
                                              : deps_.limits->common.rpc_deadline_ms;
  // 1. Read what is pending, under the row lock only for these reads (a consistent snapshot of the
  //    membership at g->version), and commit: no lock and no connection is held across the RPC.
  internal::UpdateMembersRequest req;
  int64_t reached = 0;
  auto st = WithTransaction(
      *deps_.pool,
      [&](pqxx::work& txn) -> Status {
        req.Clear();
        reached = 0;
        auto g = LoadGroup(txn, group_id, /*for_update=*/true);
        if (!g) return NotFound(kGroupNotFound);
        if (g->chat_synced_version >= g->version) return OkStatus();               // nothing pending
        if (version != 0 && g->chat_synced_version >= version) return OkStatus();  // pushed by another call
        req.set_conversation_id(GroupConversationId(group_id));
        req.set_group_id(group_id);
        if (delta && version == g->chat_synced_version + 1) {
          for (uint64_t u : delta->add) req.add_add_user_ids(u);
          for (uint64_t u : delta->remove) req.add_remove_user_ids(u);
          reached = version;
        } else {
          // An earlier push is missing: send the whole membership instead of a delta.
          for (uint64_t u : ListMemberIds(txn, group_id)) req.add_add_user_ids(u);
          for (uint64_t u : RemovedSince(txn, group_id, g->chat_synced_version)) req.add_remove_user_ids(u);
          reached = g->version;
        }
        req.set_membership_version(static_cast<uint64_t>(reached));
        if (delta) {
          req.set_actor_id(delta->actor_id);
          req.set_notice(delta->notice);
        }
        return OkStatus();
      },
      "group chat sync (read)");
  if (!st.ok()) {
    spdlog::warn("group {}: chat membership not synced (store): {}", group_id, st.message());
    return st;
  }
  if (reached == 0) return OkStatus();

  // 2. Push outside any transaction. Pushes of one group may now overlap and arrive out of order;
  //    chat-service applies a push only if its membership_version is newer than the last applied
  //    one, so a late older push changes nothing (and a delta is only sent when it directly follows
  //    the version chat is known to have, so whatever chat applies is a state group-service had).
  if (auto rs = deps_.chat->UpdateMembers(req, deadline_ms); !rs.ok()) {
    spdlog::warn("group {}: chat membership not synced (push of v{} failed): {}", group_id, reached, rs.message());
    return rs;
  }

  // 3. Record it; MarkChatSynced never moves backwards, so a slower older push cannot undo this.
  st = WithTransaction(
      *deps_.pool,
      [&](pqxx::work& txn) -> Status {
        MarkChatSynced(txn, group_id, reached);
        return OkStatus();
      },
      "group chat sync (mark)");
  if (!st.ok())  // chat has it; a later re-drive sends a re-sync that chat ignores as not newer
    spdlog::warn("group {}: chat applied v{} but marking it failed: {}", group_id, reached, st.message());
  return OkStatus();
}

Status GroupServiceImpl::Existing(const GroupRow& group, v1::GroupResult* res) {
  if (group.chat_synced_version < group.version)
    (void)SyncChat(group.id, 0, nullptr, /*short_deadline=*/true);  // best effort
  group.ToProto(res->mutable_group());
  return OkStatus();
}

std::vector<QuotaSpec> GroupQuotaSpecs(const Limits& limits) {
  constexpr int64_t kDayMs = 24 * 3600 * 1000;
  return {{"groups_d", limits.group.user_groups_created_per_day, kDayMs},
          {"invites_d", limits.group.user_invitations_per_day, kDayMs}};
}

Status GroupServiceImpl::TakeQuota(uint64_t user, uint64_t groups, uint64_t invitations) {
  if (!deps_.quotas) return OkStatus();
  std::vector<QuotaCharge> charges;
  if (groups > 0) charges.push_back({0, user, groups});
  if (invitations > 0) charges.push_back({1, user, invitations});
  const int64_t wait = deps_.quotas->TakeOne(charges);
  if (wait == 0) return OkStatus();
  return QuotaExceeded(groups > 0 ? "too many groups created or members invited today "
                                    "(limits.group.user_groups_created_per_day, user_invitations_per_day)"
                                  : "too many members invited today (limits.group.user_invitations_per_day)",
                       wait);
}

grpc::Status GroupServiceImpl::CreateGroup(grpc::ServerContext*, const internal::CreateGroupRequest* req,
                                           v1::GroupResult* res) {
  return Guarded("CreateGroup", [&]() -> Status {
    const uint64_t creator = req->origin().user_id();
    const auto& r = req->request();
    const uint32_t max_members = deps_.limits->group.max_group_members;
    if (creator == 0) return InvalidArgument("the request has no user");
    const std::string& key = r.client_request_id();
    if (auto st = ValidateClientRequestId(key); !st.ok()) return st;
    if (!key.empty()) {
      // A retry of a create that committed: answer with that group, tell nobody again.
      std::optional<GroupRow> earlier;
      auto st = WithTransaction(
          *deps_.pool,
          [&](pqxx::work& txn) -> Status {
            earlier = GroupByRequest(txn, creator, key);
            return OkStatus();
          },
          "create group (lookup)");
      if (!st.ok()) return st;
      if (earlier) return Existing(*earlier, res);
    }
    std::string name = r.name();
    if (auto st = NormalizeGroupName(&name, deps_.limits->group.max_group_name_chars); !st.ok()) return st;
    if (r.member_ids_size() == 0) return InvalidArgument("a group needs at least one member besides its creator");
    if (static_cast<size_t>(r.member_ids_size()) + 1 > max_members) return FailedPrecondition(CapMessage(max_members));
    std::vector<uint64_t> members;
    if (auto st = DistinctIds(r.member_ids(), /*reject_duplicates=*/true, &members); !st.ok()) return st;
    if (std::find(members.begin(), members.end(), creator) != members.end())
      return InvalidArgument("do not list yourself: the creator joins as owner");
    if (auto st = CheckFriends(creator, members); !st.ok()) return st;
    if (auto st = TakeQuota(creator, 1, members.size()); !st.ok()) return st;
    std::vector<std::string> creator_name;
    if (auto st = Names({creator}, &creator_name); !st.ok()) return st;

    std::vector<uint64_t> everyone{creator};
    everyone.insert(everyone.end(), members.begin(), members.end());
    GroupRow group;
    std::optional<GroupRow> earlier;
    internal::OutboxGroupChange change;
    uint64_t outbox_id = 0;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          earlier.reset();
          for (int attempt = 0; attempt < 8; ++attempt) {
            uint64_t id = MintGroupId();
            int64_t created_ms = 0;
            if (!InsertGroup(txn, id, name, creator, static_cast<uint32_t>(everyone.size()), key, &created_ms)) {
              // A concurrent retry with the same key committed first: that is our group.
              if ((earlier = GroupByRequest(txn, creator, key))) return OkStatus();
              continue;  // id taken (astronomically rare): mint another
            }
            InsertMembers(txn, id, {creator}, v1::GROUP_ROLE_OWNER, 0);
            InsertMembers(txn, id, members, v1::GROUP_ROLE_MEMBER, creator);
            LogMembership(txn, id, 1, everyone, /*added=*/true);
            group = GroupRow{id, name, creator, created_ms, static_cast<uint32_t>(everyone.size()), false, 1, 0};
            change =
                Change(group, v1::GROUP_CHANGE_KIND_CREATED, creator, everyone, everyone, req->origin().session_id(),
                       ChatDelta{everyone, {}, creator, creator_name[0] + " created the group"});
            outbox_id = Record(txn, change);
            return OkStatus();
          }
          return Internal("could not allocate a group id");
        },
        "create group");
    if (!st.ok()) return st;
    if (earlier) return Existing(*earlier, res);

    // Committed: the reply is OK from here on. If the push fails, the outbox relay (or the next
    // operation on the group) brings chat up to date; the CREATED event is only sent
    // after a successful push, so members are not told about a chat they cannot open yet.
    Announce(change, outbox_id);
    group.ToProto(res->mutable_group());
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::AddMembers(grpc::ServerContext*, const internal::AddGroupMembersRequest* req,
                                          v1::GroupResult* res) {
  return Guarded("AddMembers", [&]() -> Status {
    const uint64_t actor = req->origin().user_id();
    const auto& r = req->request();
    const uint64_t gid = r.group_id();
    const uint32_t max_members = deps_.limits->group.max_group_members;
    if (actor == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (r.user_ids_size() == 0) return InvalidArgument("name at least one user to add");
    if (static_cast<size_t>(r.user_ids_size()) > max_members) return FailedPrecondition(CapMessage(max_members));
    std::vector<uint64_t> users;
    if (auto st = DistinctIds(r.user_ids(), /*reject_duplicates=*/false, &users); !st.ok()) return st;
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);

    // Who is new (read without locking; re-checked under the lock below).
    GroupRow group;
    std::vector<uint64_t> fresh;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, false);
          if (!g || g->dissolved || !MemberRole(txn, gid, actor)) return NotFound(kGroupNotFound);
          group = *g;
          auto present = MembersAmong(txn, gid, users);
          std::unordered_set<uint64_t> p(present.begin(), present.end());
          fresh.clear();
          for (uint64_t u : users)
            if (!p.count(u)) fresh.push_back(u);
          return OkStatus();
        },
        "add members (read)");
    if (!st.ok()) return st;

    auto nothing_new = [&]() -> Status {
      // Idempotent repeat; it also re-drives a chat push that failed earlier (best effort: the
      // outbox relay repairs it otherwise).
      if (group.chat_synced_version < group.version) (void)SyncChat(gid, 0, nullptr);  // best effort: logged inside
      group.ToProto(res->mutable_group());
      return OkStatus();
    };
    if (fresh.empty()) return nothing_new();
    if (group.member_count + fresh.size() > max_members) return FailedPrecondition(CapMessage(max_members));
    if (auto s = CheckFriends(actor, fresh); !s.ok()) return s;
    if (auto s = TakeQuota(actor, 0, fresh.size()); !s.ok()) return s;
    std::vector<uint64_t> named{actor};
    named.insert(named.end(), fresh.begin(), fresh.end());
    std::vector<std::string> names;
    if (auto s = Names(named, &names); !s.ok()) return s;
    std::unordered_map<uint64_t, std::string> name_of;
    for (size_t i = 0; i < named.size(); ++i) name_of[named[i]] = names[i];

    std::vector<uint64_t> added, everyone;
    int64_t version = 0;
    internal::OutboxGroupChange change;
    uint64_t outbox_id = 0;
    st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          added.clear();
          everyone.clear();
          version = 0;
          auto g = LoadGroup(txn, gid, /*for_update=*/true);
          if (!g || g->dissolved || !MemberRole(txn, gid, actor)) return NotFound(kGroupNotFound);
          group = *g;
          added = InsertMembers(txn, gid, fresh, v1::GROUP_ROLE_MEMBER, actor);
          if (added.empty()) return OkStatus();
          if (g->member_count + added.size() > max_members) return FailedPrecondition(CapMessage(max_members));
          group.member_count = g->member_count + static_cast<uint32_t>(added.size());
          version = CommitMembershipChange(txn, gid, group.member_count, g->owner_id);
          group.version = version;
          LogMembership(txn, gid, version, added, /*added=*/true);
          everyone = ListMemberIds(txn, gid);
          std::vector<std::string> added_names;
          for (uint64_t u : added) added_names.push_back(name_of[u]);
          change =
              Change(group, v1::GROUP_CHANGE_KIND_MEMBERS_ADDED, actor, added, everyone, req->origin().session_id(),
                     ChatDelta{added, {}, actor, name_of[actor] + " invited " + JoinNames(added_names)});
          outbox_id = Record(txn, change);
          return OkStatus();
        },
        "add members");
    if (!st.ok()) return st;
    if (added.empty()) return nothing_new();  // a concurrent call added them first

    // Committed: OK from here on (see the header comment); the event waits for chat to have it.
    Announce(change, outbox_id);
    group.ToProto(res->mutable_group());
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::Leave(grpc::ServerContext*, const internal::GroupIdRequest* req, v1::Empty*) {
  return Guarded("Leave", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    const uint64_t gid = req->group_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);

    bool member = false, left_pending = false;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, false);
          if (!g) return NotFound(kGroupNotFound);
          member = MemberRole(txn, gid, user).has_value();
          left_pending =
              !member && g->chat_synced_version < g->version && LeftSince(txn, gid, user, g->chat_synced_version);
          return OkStatus();
        },
        "leave (read)");
    if (!st.ok()) return st;
    if (!member) {
      // A retry while the leave is still being pushed to chat: it has happened; help the push along
      // (best effort: the outbox relay finishes it otherwise).
      if (left_pending) {
        (void)SyncChat(gid, 0, nullptr);
        return OkStatus();
      }
      return NotFound(kGroupNotFound);
    }
    std::vector<std::string> name;
    if (auto s = Names({user}, &name); !s.ok()) return s;

    GroupRow group;
    std::vector<uint64_t> remaining;
    int64_t version = 0;
    internal::OutboxGroupChange change;
    uint64_t outbox_id = 0;
    st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, /*for_update=*/true);
          if (!g) return NotFound(kGroupNotFound);
          auto role = DeleteMember(txn, gid, user);
          if (!role) return NotFound(kGroupNotFound);  // a concurrent Leave won
          group = *g;
          group.member_count = g->member_count > 0 ? g->member_count - 1 : 0;
          if (group.member_count > 0 && (*role == v1::GROUP_ROLE_OWNER || g->owner_id == user)) {
            auto heir = OldestMember(txn, gid);
            if (!heir) return Internal("member count out of step");
            SetRole(txn, gid, *heir, v1::GROUP_ROLE_OWNER);
            group.owner_id = *heir;
          }
          version = CommitMembershipChange(txn, gid, group.member_count, group.owner_id);
          group.version = version;
          group.dissolved = group.member_count == 0;
          LogMembership(txn, gid, version, {user}, /*added=*/false);
          remaining = ListMemberIds(txn, gid);
          std::vector<uint64_t> to = remaining;
          to.push_back(user);
          change = Change(group, v1::GROUP_CHANGE_KIND_MEMBER_LEFT, user, {user}, to, req->origin().session_id(),
                          ChatDelta{{}, {user}, user, name[0] + " left the group"});
          outbox_id = Record(txn, change);
          return OkStatus();
        },
        "leave");
    if (!st.ok()) return st;

    // Committed: OK from here on (see the header comment); the event waits for chat to have it.
    Announce(change, outbox_id);
    return OkStatus();
  });
}

bool GroupServiceImpl::RelayChange(uint64_t outbox_id, const std::string& payload) {
  internal::OutboxGroupChange change;
  if (change.ParseFromString(payload)) return Announce(change, outbox_id, /*relayed=*/true);
  spdlog::error("outbox row {} is not a group change; dropped", outbox_id);
  if (deps_.outbox) deps_.outbox->Ack({outbox_id});
  return true;
}

bool GroupServiceImpl::RelaySync(uint64_t outbox_id, const std::string& payload) {
  uint64_t group_id = 0;
  try {
    group_id = std::stoull(payload);
  } catch (const std::exception&) {
  }
  if (group_id == 0) {
    spdlog::error("outbox row {} is not a group id; dropped", outbox_id);
  } else if (!SyncChat(group_id, 0, nullptr, /*short_deadline=*/true).ok()) {
    return false;
  }
  if (deps_.outbox) deps_.outbox->Ack({outbox_id});
  return true;
}

grpc::Status GroupServiceImpl::ListMembers(grpc::ServerContext*, const internal::GroupIdRequest* req,
                                           v1::GroupMembersResult* res) {
  return Guarded("ListMembers", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    const uint64_t gid = req->group_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);

    GroupRow group;
    std::vector<MemberRow> rows;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, false);
          if (!g || g->dissolved || !MemberRole(txn, gid, user)) return NotFound(kGroupNotFound);
          group = *g;
          rows = chat::group::ListMembers(txn, gid);
          return OkStatus();
        },
        "list members");
    if (!st.ok()) return st;
    if (group.chat_synced_version < group.version)
      (void)SyncChat(gid, 0, nullptr, /*short_deadline=*/true);  // best effort

    std::vector<uint64_t> ids;
    ids.reserve(rows.size());
    for (const auto& m : rows) ids.push_back(m.user_id);
    std::vector<v1::UserProfile> profiles;
    if (auto s = deps_.profiles->GetProfiles(/*viewer=*/user, ids, &profiles); !s.ok()) return s;
    std::unordered_map<uint64_t, v1::UserProfile*> by_id;
    for (auto& p : profiles) by_id[p.user_id()] = &p;

    group.ToProto(res->mutable_group());
    for (const auto& m : rows) {
      auto* out = res->add_members();
      auto it = by_id.find(m.user_id);
      auto* profile = out->mutable_profile();
      if (it != by_id.end()) {
        // Copy only the public fields and the asker's own remark, whatever else the profile source may carry.
        profile->set_handle(it->second->handle());
        profile->set_display_name(it->second->display_name());
        profile->set_remark(it->second->remark());
      }
      profile->set_user_id(m.user_id);
      out->set_role(m.role);
      out->set_alias(m.alias);
      out->set_joined_ms(m.joined_ms);
    }
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::ListMyGroups(grpc::ServerContext*, const internal::UserIdRequest* req,
                                            v1::GroupsResult* res) {
  return Guarded("ListMyGroups", [&]() -> Status {
    const uint64_t user = req->user_id();
    if (user == 0) return InvalidArgument("the request has no user");
    std::vector<GroupRow> groups;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          groups = GroupsOfUser(txn, user);
          return OkStatus();
        },
        "list my groups");
    if (!st.ok()) return st;
    // Best effort re-drive of a few lagging groups; stop at the first failure (chat is likely down).
    int resyncs = kResyncsPerListMyGroups;
    for (const auto& g : groups) {
      if (g.chat_synced_version < g.version && resyncs > 0)
        resyncs = SyncChat(g.id, 0, nullptr, /*short_deadline=*/true).ok() ? resyncs - 1 : 0;
      g.ToProto(res->add_groups());
    }
    return OkStatus();
  });
}

}  // namespace chat::group
