#include "group/group_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "common/secure_random.h"
#include "common/shard.h"
#include "common/status.h"
#include "common/text_policy.h"
#include "common/token.h"

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

bool IsAdmin(std::optional<v1::GroupRole> role) { return role && *role >= v1::GROUP_ROLE_ADMIN; }
bool IsOwner(std::optional<v1::GroupRole> role) { return role && *role == v1::GROUP_ROLE_OWNER; }

constexpr char kNoInvitation[] = "no such invitation";

// A new group's send rules: its creator (the owner) is its only privileged member.
internal::GroupSendRules CreatorRules(uint64_t creator) {
  internal::GroupSendRules rules;
  rules.add_privileged_user_ids(creator);
  return rules;
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
                                                     const ChatDelta& delta, uint64_t invited_by, bool by_code) {
  internal::OutboxGroupChange change;
  change.set_group_id(group.id);
  change.set_version(group.version);
  for (uint64_t u : delta.add) change.add_add_user_ids(u);
  for (uint64_t u : delta.remove) change.add_remove_user_ids(u);
  change.set_actor_id(delta.actor_id);
  change.set_notice(delta.notice);
  if (delta.rules) *change.mutable_rules() = *delta.rules;
  v1::Event event;
  auto* changed = event.mutable_group_changed();
  group.ToProto(changed->mutable_group());
  changed->set_kind(kind);
  changed->set_actor_id(actor);
  for (uint64_t u : user_ids) changed->add_user_ids(u);
  changed->set_invited_by(invited_by);
  changed->set_by_code(by_code);
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
  ChatDelta delta{{change.add_user_ids().begin(), change.add_user_ids().end()},
                  {change.remove_user_ids().begin(), change.remove_user_ids().end()},
                  change.actor_id(),
                  change.notice(),
                  std::nullopt};
  if (change.has_rules()) delta.rules = change.rules();
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
          if (delta->rules) *req.mutable_rules() = *delta->rules;
          reached = version;
        } else {
          // An earlier push is missing: send the whole membership (and send rules) instead of a delta.
          for (uint64_t u : ListMemberIds(txn, group_id)) req.add_add_user_ids(u);
          for (uint64_t u : RemovedSince(txn, group_id, g->chat_synced_version)) req.add_remove_user_ids(u);
          *req.mutable_rules() = SendRules(txn, group_id, g->all_muted);
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
  constexpr int64_t kHourMs = 3600 * 1000;
  return {{"groups_d", limits.group.user_groups_created_per_day, kDayMs},
          {"invites_d", limits.group.user_invitations_per_day, kDayMs},
          {"codes_d", limits.group.user_invite_codes_per_day, kDayMs},
          {"code_uses_h", limits.group.user_invite_code_uses_per_hour, kHourMs}};
}

Status GroupServiceImpl::ChargeOne(uint64_t user, size_t spec, const std::string& what) {
  if (!deps_.quotas) return OkStatus();
  const int64_t wait = deps_.quotas->TakeOne({{spec, user, 1}});
  if (wait == 0) return OkStatus();
  return QuotaExceeded(what, wait);
}

int64_t GroupServiceImpl::NowMs() const {
  if (deps_.now_ms) return deps_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status GroupServiceImpl::CommitAction(uint64_t gid, uint64_t actor, uint64_t skip_session_id, bool require_member,
                                      const ActionFn& fn, GroupRow* out, const char* what) {
  if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);
  ActionPlan plan;
  internal::OutboxGroupChange change;
  uint64_t outbox_id = 0;
  auto st = WithTransaction(
      *deps_.pool,
      [&](pqxx::work& txn) -> Status {
        plan = ActionPlan{};
        auto g = LoadGroup(txn, gid, /*for_update=*/true);
        if (!g || g->dissolved) return NotFound(kGroupNotFound);
        const auto role = MemberRole(txn, gid, actor);
        if (require_member && !role) return NotFound(kGroupNotFound);
        GroupRow group = *g;
        if (auto s = fn(txn, group, role, &plan); !s.ok()) return s;
        *out = group;
        if (plan.nothing) return OkStatus();
        group.version = CommitMembershipChange(txn, gid, group.member_count, group.owner_id);
        group.dissolved = group.member_count == 0;
        LogMembership(txn, gid, group.version, plan.add, /*added=*/true);
        DeleteInvitations(txn, gid, plan.add);  // whoever joined, by any way, waits for nothing more
        LogMembership(txn, gid, group.version, plan.remove, /*added=*/false);
        std::vector<uint64_t> to = ListMemberIds(txn, gid);
        to.insert(to.end(), plan.also_tell.begin(), plan.also_tell.end());
        ChatDelta delta{plan.add, plan.remove, actor, plan.notice, SendRules(txn, gid, group.all_muted)};
        change =
            Change(group, plan.kind, actor, plan.user_ids, to, skip_session_id, delta, plan.invited_by, plan.by_code);
        outbox_id = Record(txn, change);
        *out = group;
        return OkStatus();
      },
      what);
  if (!st.ok()) return st;
  if (plan.nothing) {
    // A repeat: also re-drives a chat push that failed earlier (best effort; the relay repairs it otherwise).
    if (out->chat_synced_version < out->version) (void)SyncChat(gid, 0, nullptr);
    return OkStatus();
  }
  // Committed: OK from here on (see the header comment); the event waits for chat to have it.
  Announce(change, outbox_id);
  return OkStatus();
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
                       ChatDelta{everyone, {}, creator, creator_name[0] + " created the group", CreatorRules(creator)});
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
    std::optional<v1::GroupRole> actor_role;
    std::vector<uint64_t> fresh;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, false);
          actor_role = MemberRole(txn, gid, actor);
          if (!g || g->dissolved || !actor_role) return NotFound(kGroupNotFound);
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
    // Invitations that wait (a large group, or confirmation mode) meet the cap when they are accepted.
    const bool direct = group.member_count < deps_.limits->group.invitee_accepts_from_members &&
                        !(group.invite_confirmation && !IsAdmin(actor_role));
    if ((direct && group.member_count + fresh.size() > max_members) || group.member_count >= max_members)
      return FailedPrecondition(CapMessage(max_members));
    if (auto s = CheckFriends(actor, fresh); !s.ok()) return s;
    if (auto s = TakeQuota(actor, 0, fresh.size()); !s.ok()) return s;
    std::vector<uint64_t> named{actor};
    named.insert(named.end(), fresh.begin(), fresh.end());
    std::vector<std::string> names;
    if (auto s = Names(named, &names); !s.ok()) return s;
    std::unordered_map<uint64_t, std::string> name_of;
    for (size_t i = 0; i < named.size(); ++i) name_of[named[i]] = names[i];

    GroupRow after;
    const int64_t now = NowMs();
    const int64_t expires = now + int64_t{deps_.limits->group.group_invitation_ttl_s} * 1000;
    std::vector<uint64_t> invited, pending, admins;
    st = CommitAction(
        gid, actor, req->origin().session_id(), /*require_member=*/true,
        [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
          invited.clear();
          pending.clear();
          admins.clear();
          // Confirmation mode (a member's invitation waits for approval) and large groups (the invitee
          // accepts first): nobody joins now, so nothing reaches chat; the waiting ones are told below.
          const bool approval = g.invite_confirmation && !IsAdmin(role);
          if (approval || g.member_count >= deps_.limits->group.invitee_accepts_from_members) {
            if (g.member_count >= max_members) return FailedPrecondition(CapMessage(max_members));
            const auto present = MembersAmong(txn, gid, fresh);
            for (uint64_t u : fresh) {
              if (std::find(present.begin(), present.end(), u) != present.end()) continue;
              UpsertInvitation(txn, gid, u, actor, /*by_code=*/false,
                               approval ? InvitationState::kAwaitingApproval : InvitationState::kAwaitingInvitee,
                               expires, now);
              (approval ? pending : invited).push_back(u);
            }
            if (approval) admins = AdminIds(txn, gid);
            return Unchanged(plan);
          }
          const std::vector<uint64_t> added = InsertMembers(txn, gid, fresh, v1::GROUP_ROLE_MEMBER, actor);
          if (added.empty()) {  // a concurrent call added them first
            plan->nothing = true;
            return OkStatus();
          }
          if (g.member_count + added.size() > max_members) return FailedPrecondition(CapMessage(max_members));
          g.member_count += static_cast<uint32_t>(added.size());
          std::vector<std::string> added_names;
          for (uint64_t u : added) added_names.push_back(name_of[u]);
          plan->kind = v1::GROUP_CHANGE_KIND_MEMBERS_ADDED;
          plan->user_ids = added;
          plan->add = added;
          plan->invited_by = actor;
          plan->notice = name_of[actor] + " invited " + JoinNames(added_names);
          return OkStatus();
        },
        &after, "add members");
    if (!st.ok()) return st;
    for (uint64_t u : invited) TellInvitation(after, u, actor, false, expires, {u}, false);
    for (uint64_t u : pending) TellInvitation(after, u, actor, false, expires, admins, true);
    after.ToProto(res->mutable_group());
    for (uint64_t u : invited) res->add_invited_user_ids(u);
    for (uint64_t u : pending) res->add_pending_approval_user_ids(u);
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

    GroupRow after;
    return CommitAction(
        gid, user, req->origin().session_id(), /*require_member=*/true,
        [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
          if (*role == v1::GROUP_ROLE_OWNER && g.member_count > 1)
            return FailedPrecondition("the owner must transfer ownership before leaving the group");
          if (!DeleteMember(txn, gid, user)) return NotFound(kGroupNotFound);
          g.member_count = g.member_count > 0 ? g.member_count - 1 : 0;
          plan->kind = v1::GROUP_CHANGE_KIND_MEMBER_LEFT;
          plan->user_ids = {user};
          plan->remove = {user};
          plan->also_tell = {user};
          plan->notice = name[0] + " left the group";
          return OkStatus();
        },
        &after, "leave");
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
      out->set_muted(m.muted);
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

namespace chat::group {

namespace {

constexpr char kOwnerOnly[] = "only the group's owner can do this";
constexpr char kOwnerOrAdmin[] = "only the group's owner and admins can do this";

bool ValidId(uint64_t id) { return id != 0 && id <= static_cast<uint64_t>(INT64_MAX); }

}  // namespace

// An action that finds nothing to change (a repeat): OK, and no version, notice or event.
Status GroupServiceImpl::Unchanged(ActionPlan* plan) {
  plan->nothing = true;
  return OkStatus();
}

namespace {}  // namespace

grpc::Status GroupServiceImpl::Manage(grpc::ServerContext*, const internal::ManageGroupRequest* req,
                                      v1::GroupResult* res) {
  return Guarded("Manage", [&]() -> Status {
    const uint64_t actor = req->origin().user_id();
    const auto& r = req->request();
    const uint64_t gid = r.group_id();
    if (actor == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    using A = v1::ManageGroupRequest;
    // Who the action names (their names go into the notice), checked before anything is read.
    std::vector<uint64_t> targets;
    switch (r.action_case()) {
      case A::kSetAdmin:
        targets = {r.set_admin().user_id()};
        break;
      case A::kTransferOwnerTo:
        targets = {r.transfer_owner_to()};
        break;
      case A::kMuteMember:
        targets = {r.mute_member().user_id()};
        break;
      case A::kRemoveMembers: {
        if (r.remove_members().user_ids_size() == 0) return InvalidArgument("name at least one member to remove");
        if (static_cast<uint32_t>(r.remove_members().user_ids_size()) > deps_.limits->group.max_group_members)
          return InvalidArgument("too many members in one request");
        if (auto st = DistinctIds(r.remove_members().user_ids(), /*reject_duplicates=*/false, &targets); !st.ok())
          return st;
        break;
      }
      case A::kDissolve:
        if (!r.dissolve()) return InvalidArgument("dissolve must be true");
        break;
      case A::kRename:
      case A::kMuteAll:
      case A::kInviteConfirmation:
        break;
      case A::ACTION_NOT_SET:
        return InvalidArgument("name one action");
    }
    for (uint64_t t : targets) {
      if (!ValidId(t)) return InvalidArgument("a valid user id is required");
      if (t == actor) return InvalidArgument("you cannot do this to yourself");
    }
    std::string new_name = r.rename();
    if (r.action_case() == A::kRename)
      if (auto st = NormalizeGroupName(&new_name, deps_.limits->group.max_group_name_chars); !st.ok()) return st;
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);

    std::vector<uint64_t> named{actor};
    named.insert(named.end(), targets.begin(), targets.end());
    std::vector<std::string> names;
    if (auto st = Names(named, &names); !st.ok()) return st;
    const std::string& actor_name = names[0];
    const uint32_t max_admins = deps_.limits->group.max_group_admins;

    GroupRow after;
    auto act = [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
      // The target's role, NOT_FOUND-free: a target who is not a member is INVALID_ARGUMENT (the actor
      // is a member and may know who is in the group).
      auto target_role = [&](uint64_t t) -> Result<v1::GroupRole> {
        auto tr = MemberRole(txn, gid, t);
        if (!tr) return InvalidArgument("that user is not a member of this group");
        return *tr;
      };
      switch (r.action_case()) {
        case A::kRename: {
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          if (new_name == g.name) return Unchanged(plan);
          SetName(txn, gid, new_name);
          g.name = new_name;
          plan->kind = v1::GROUP_CHANGE_KIND_RENAMED;
          plan->notice = new_name.empty() ? actor_name + " removed the group name"
                                          : actor_name + " renamed the group to \"" + new_name + "\"";
          return OkStatus();
        }
        case A::kSetAdmin: {
          if (!IsOwner(role)) return PermissionDenied(kOwnerOnly);
          const uint64_t t = targets[0];
          auto tr = target_role(t);
          if (!tr.ok()) return tr.status();
          const bool on = r.set_admin().on();
          if ((*tr == v1::GROUP_ROLE_ADMIN) == on) return Unchanged(plan);
          if (on && CountAdmins(txn, gid) >= max_admins)
            return FailedPrecondition("a group has at most " + std::to_string(max_admins) + " admins");
          SetRole(txn, gid, t, on ? v1::GROUP_ROLE_ADMIN : v1::GROUP_ROLE_MEMBER);
          plan->kind = on ? v1::GROUP_CHANGE_KIND_ADMIN_ADDED : v1::GROUP_CHANGE_KIND_ADMIN_REMOVED;
          plan->user_ids = {t};
          plan->notice = on ? actor_name + " made " + names[1] + " an admin"
                            : actor_name + " removed " + names[1] + " as an admin";
          return OkStatus();
        }
        case A::kTransferOwnerTo: {
          if (!IsOwner(role)) return PermissionDenied(kOwnerOnly);
          const uint64_t t = targets[0];
          if (auto tr = target_role(t); !tr.ok()) return tr.status();
          SetRole(txn, gid, actor, v1::GROUP_ROLE_MEMBER);  // first: one owner at a time (unique index)
          SetRole(txn, gid, t, v1::GROUP_ROLE_OWNER);
          g.owner_id = t;
          plan->kind = v1::GROUP_CHANGE_KIND_OWNER_TRANSFERRED;
          plan->user_ids = {t};
          plan->notice = actor_name + " made " + names[1] + " the group owner";
          return OkStatus();
        }
        case A::kRemoveMembers: {
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          std::vector<uint64_t> removed;
          std::vector<std::string> removed_names;
          for (size_t i = 0; i < targets.size(); ++i) {
            auto tr = MemberRole(txn, gid, targets[i]);
            if (!tr) continue;  // not (or no longer) a member: a repeat removes nobody twice
            if (*tr >= v1::GROUP_ROLE_ADMIN && !IsOwner(role))
              return PermissionDenied("admins can remove members only, not the owner or other admins");
            DeleteMember(txn, gid, targets[i]);
            removed.push_back(targets[i]);
            removed_names.push_back(names[i + 1]);
          }
          if (removed.empty()) return Unchanged(plan);
          g.member_count -= static_cast<uint32_t>(std::min<size_t>(removed.size(), g.member_count));
          plan->kind = v1::GROUP_CHANGE_KIND_MEMBER_REMOVED;
          plan->user_ids = removed;
          plan->remove = removed;
          plan->also_tell = removed;
          plan->notice = actor_name + " removed " + JoinNames(removed_names);
          return OkStatus();
        }
        case A::kMuteMember: {
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          const uint64_t t = targets[0];
          auto tr = target_role(t);
          if (!tr.ok()) return tr.status();
          if (*tr >= v1::GROUP_ROLE_ADMIN) return FailedPrecondition("the owner and admins cannot be muted");
          const bool on = r.mute_member().on();
          if (!SetMuted(txn, gid, t, on)) return Unchanged(plan);
          plan->kind = on ? v1::GROUP_CHANGE_KIND_MEMBER_MUTED : v1::GROUP_CHANGE_KIND_MEMBER_UNMUTED;
          plan->user_ids = {t};
          plan->notice = on ? actor_name + " muted " + names[1] : actor_name + " unmuted " + names[1];
          return OkStatus();
        }
        case A::kMuteAll: {
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          if (g.all_muted == r.mute_all()) return Unchanged(plan);
          g.all_muted = r.mute_all();
          SetFlags(txn, gid, g.all_muted, g.invite_confirmation);
          plan->kind = v1::GROUP_CHANGE_KIND_SETTINGS_CHANGED;
          plan->notice = g.all_muted ? actor_name + " muted the group: only the owner and admins can send"
                                     : actor_name + " unmuted the group";
          return OkStatus();
        }
        case A::kInviteConfirmation: {
          if (!IsOwner(role)) return PermissionDenied(kOwnerOnly);
          if (g.invite_confirmation == r.invite_confirmation()) return Unchanged(plan);
          g.invite_confirmation = r.invite_confirmation();
          SetFlags(txn, gid, g.all_muted, g.invite_confirmation);
          plan->kind = v1::GROUP_CHANGE_KIND_SETTINGS_CHANGED;
          plan->notice = g.invite_confirmation
                             ? actor_name + " turned on invitation confirmation: new members need approval"
                             : actor_name + " turned off invitation confirmation";
          return OkStatus();
        }
        case A::kDissolve: {
          if (!IsOwner(role)) return PermissionDenied(kOwnerOnly);
          std::vector<uint64_t> everyone = DeleteAllMembers(txn, gid);
          g.member_count = 0;
          plan->kind = v1::GROUP_CHANGE_KIND_DISSOLVED;
          plan->remove = everyone;
          plan->also_tell = everyone;
          plan->notice = actor_name + " dissolved the group";
          return OkStatus();
        }
        case A::ACTION_NOT_SET:
          break;
      }
      return InvalidArgument("name one action");
    };
    if (auto st =
            CommitAction(gid, actor, req->origin().session_id(), /*require_member=*/true, act, &after, "manage group");
        !st.ok())
      return st;
    after.ToProto(res->mutable_group());
    return OkStatus();
  });
}

std::optional<InviteCodeRow> GroupServiceImpl::LiveCode(pqxx::work& txn, const std::string& code, int64_t now_ms) {
  auto row = LookupInviteCode(txn, Sha256Hex(code));
  if (!row || row->revoked || row->expires_ms <= now_ms || !OwnsGroup(row->group_id)) return std::nullopt;
  auto g = LoadGroup(txn, row->group_id, false);
  if (!g || g->dissolved || !MemberRole(txn, row->group_id, row->created_by)) return std::nullopt;
  return row;
}

grpc::Status GroupServiceImpl::MakeInviteCode(grpc::ServerContext*, const internal::MakeInviteCodeRequest* req,
                                              v1::GroupInviteCode* res) {
  return Guarded("MakeInviteCode", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    const uint64_t gid = req->request().group_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);
    const uint32_t code_max = deps_.limits->group.invite_code_max_members;
    uint64_t route = 0;
    while (route == 0 || ShardOfGroup(route, deps_.shard_count) != deps_.shard)
      route = RandomU64() & static_cast<uint64_t>(INT64_MAX);
    const std::string code = GroupInviteToken(route, RandomHex(kInviteSecretHexChars));
    const int64_t now = NowMs();
    const int64_t expires = now + int64_t{deps_.limits->group.invite_code_ttl_s} * 1000;
    bool checked = false;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto g = LoadGroup(txn, gid, false);
          if (!g || g->dissolved || !MemberRole(txn, gid, user)) return NotFound(kGroupNotFound);
          if (g->member_count >= code_max)
            return FailedPrecondition("a group of " + std::to_string(code_max) +
                                      " or more members is joined by invitation only");
          if (!checked) {  // charged once, after the checks a member can see (not per transaction retry)
            checked = true;
            if (auto s =
                    ChargeOne(user, 2, "too many invite codes made today (limits.group.user_invite_codes_per_day)");
                !s.ok())
              return s;
          }
          InsertInviteCode(txn, Sha256Hex(code), gid, user, expires, now);
          return OkStatus();
        },
        "make invite code");
    if (!st.ok()) return st;
    res->set_code(code);
    res->set_expires_ms(expires);
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::PreviewInviteCode(grpc::ServerContext*, const internal::InviteCodeRequest* req,
                                                 v1::GroupPreview* res) {
  return Guarded("PreviewInviteCode", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    if (user == 0) return InvalidArgument("the request has no user");
    // Every use counts, found or not: guessing costs quota whatever the answer.
    if (auto s =
            ChargeOne(user, 3, "too many invite codes tried this hour (limits.group.user_invite_code_uses_per_hour)");
        !s.ok())
      return s;
    if (!ParseGroupInviteToken(req->code())) return NotFound(kInvalidInviteCode);
    GroupRow group;
    std::vector<std::pair<uint64_t, std::string>> shown;
    const int64_t now = NowMs();
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          auto code = LiveCode(txn, req->code(), now);
          if (!code) return NotFound(kInvalidInviteCode);
          group = *LoadGroup(txn, code->group_id, false);
          shown = PreviewMembers(txn, code->group_id, deps_.limits->group.invite_preview_names);
          return OkStatus();
        },
        "preview invite code");
    if (!st.ok()) return st;
    std::vector<uint64_t> ids;
    for (const auto& [id, alias] : shown)
      if (alias.empty()) ids.push_back(id);
    std::vector<std::string> names;
    if (auto s = Names(ids, &names); !s.ok()) return s;
    res->set_name(group.name);
    res->set_member_count(group.member_count);
    size_t next = 0;
    for (const auto& [id, alias] : shown) res->add_member_names(alias.empty() ? names[next++] : alias);
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::JoinByCode(grpc::ServerContext*, const internal::InviteCodeRequest* req,
                                          v1::GroupResult* res) {
  return Guarded("JoinByCode", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (auto s =
            ChargeOne(user, 3, "too many invite codes tried this hour (limits.group.user_invite_code_uses_per_hour)");
        !s.ok())
      return s;
    if (!ParseGroupInviteToken(req->code())) return NotFound(kInvalidInviteCode);
    const int64_t now = NowMs();
    // The code's group (read first: the action locks the group row, and needs its id).
    std::optional<InviteCodeRow> code;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          code = LiveCode(txn, req->code(), now);
          return code ? OkStatus() : NotFound(kInvalidInviteCode);
        },
        "join by code (read)");
    if (!st.ok()) return st;
    std::vector<std::string> names;
    if (auto s = Names({user, code->created_by}, &names); !s.ok()) return s;
    const uint32_t code_max = deps_.limits->group.invite_code_max_members;
    const uint32_t max_members = deps_.limits->group.max_group_members;
    const int64_t expires = now + int64_t{deps_.limits->group.group_invitation_ttl_s} * 1000;
    std::vector<uint64_t> admins;
    GroupRow after;
    st = CommitAction(
        code->group_id, user, req->origin().session_id(), /*require_member=*/false,
        [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
          if (role) return Unchanged(plan);  // already a member (a retry): OK
          // Re-checked under the group's lock: its maker may have left since the read.
          if (!LiveCode(txn, req->code(), now)) return NotFound(kInvalidInviteCode);
          if (g.invite_confirmation) {  // a request for the owner and admins to approve
            UpsertInvitation(txn, g.id, user, code->created_by, /*by_code=*/true, InvitationState::kAwaitingApproval,
                             expires, now);
            admins = AdminIds(txn, g.id);
            return Unchanged(plan);
          }
          if (g.member_count >= code_max)
            return FailedPrecondition("a group of " + std::to_string(code_max) +
                                      " or more members is joined by invitation only");
          if (g.member_count >= max_members) return FailedPrecondition(CapMessage(max_members));
          InsertMembers(txn, g.id, {user}, v1::GROUP_ROLE_MEMBER, code->created_by);
          g.member_count += 1;
          plan->kind = v1::GROUP_CHANGE_KIND_MEMBER_JOINED;
          plan->user_ids = {user};
          plan->add = {user};
          plan->invited_by = code->created_by;
          plan->by_code = true;
          plan->notice = names[0] + " joined the group with " + names[1] + "'s invite code";
          return OkStatus();
        },
        &after, "join by code");
    if (!st.ok()) return st;
    if (!admins.empty()) {  // awaiting approval: the joiner is not a member and learns nothing more
      TellInvitation(after, user, code->created_by, /*by_code=*/true, expires, admins, true);
      res->add_pending_approval_user_ids(user);
      return OkStatus();
    }
    after.ToProto(res->mutable_group());
    return OkStatus();
  });
}

}  // namespace chat::group

namespace chat::group {

void GroupServiceImpl::TellInvitation(const GroupRow& group, uint64_t user, uint64_t inviter, bool by_code,
                                      int64_t expires_ms, const std::vector<uint64_t>& to, bool needs_approval) {
  FanoutItem item;
  item.user_ids = to;
  auto* e = item.event.mutable_group_invitation();
  e->set_needs_approval(needs_approval);
  v1::GroupInvitation* inv = e->mutable_invitation();
  inv->set_group_id(group.id);
  inv->set_group_name(group.name);
  inv->set_member_count(group.member_count);
  inv->set_user_id(user);
  inv->set_inviter_id(inviter);
  inv->set_by_code(by_code);
  inv->set_expires_ms(expires_ms);
  std::vector<FanoutItem> items;
  items.push_back(std::move(item));
  deps_.events->Publish(std::move(items));  // a doorbell: the lists are the truth
}

grpc::Status GroupServiceImpl::RespondInvitation(grpc::ServerContext*, const internal::RespondInvitationRequest* req,
                                                 v1::GroupResult* res) {
  return Guarded("RespondInvitation", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    const uint64_t gid = req->request().group_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!OwnsGroup(gid)) return NotFound(kNoInvitation);
    const int64_t now = NowMs();
    // The invitation as it stands (its inviter names the notice); taken under the group's lock below.
    std::optional<v1::GroupInvitation> pending;
    auto st = WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          pending.reset();
          for (auto& inv : InvitationsOf(txn, user, now))
            if (inv.group_id() == gid) pending = inv;
          return pending ? OkStatus() : NotFound(kNoInvitation);
        },
        "respond to invitation (read)");
    if (!st.ok()) return st;
    if (!req->request().accept()) {
      return WithTransaction(
          *deps_.pool,
          [&](pqxx::work& txn) -> Status {
            return TakeInvitation(txn, gid, user, InvitationState::kAwaitingInvitee, now) ? OkStatus()
                                                                                          : NotFound(kNoInvitation);
          },
          "decline invitation");
    }
    std::vector<std::string> names;
    if (auto s = Names({user, pending->inviter_id()}, &names); !s.ok()) return s;
    const uint32_t max_members = deps_.limits->group.max_group_members;
    GroupRow after;
    st = CommitAction(
        gid, user, req->origin().session_id(), /*require_member=*/false,
        [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
          auto inv = TakeInvitation(txn, gid, user, InvitationState::kAwaitingInvitee, now);
          if (role) return Unchanged(plan);  // joined meanwhile (another way in)
          if (!inv) return NotFound(kNoInvitation);
          if (g.member_count >= max_members) return FailedPrecondition(CapMessage(max_members));
          InsertMembers(txn, gid, {user}, v1::GROUP_ROLE_MEMBER, inv->first);
          g.member_count += 1;
          plan->kind = v1::GROUP_CHANGE_KIND_MEMBERS_ADDED;
          plan->user_ids = {user};
          plan->add = {user};
          plan->invited_by = inv->first;
          plan->notice = names[0] + " joined the group, invited by " + names[1];
          return OkStatus();
        },
        &after, "accept invitation");
    if (!st.ok()) return st;
    after.ToProto(res->mutable_group());
    return OkStatus();
  });
}

grpc::Status GroupServiceImpl::ListMyInvitations(grpc::ServerContext*, const internal::UserIdRequest* req,
                                                 v1::GroupInvitationsResult* res) {
  return Guarded("ListMyInvitations", [&]() -> Status {
    if (req->user_id() == 0) return InvalidArgument("the request has no user");
    const int64_t now = NowMs();
    return WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          res->Clear();
          for (auto& inv : InvitationsOf(txn, req->user_id(), now)) *res->add_invitations() = std::move(inv);
          return OkStatus();
        },
        "list my invitations");
  });
}

grpc::Status GroupServiceImpl::ListJoinRequests(grpc::ServerContext*, const internal::GroupIdRequest* req,
                                                v1::GroupInvitationsResult* res) {
  return Guarded("ListJoinRequests", [&]() -> Status {
    const uint64_t user = req->origin().user_id();
    const uint64_t gid = req->group_id();
    if (user == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!OwnsGroup(gid)) return NotFound(kGroupNotFound);
    const int64_t now = NowMs();
    return WithTransaction(
        *deps_.pool,
        [&](pqxx::work& txn) -> Status {
          res->Clear();
          auto g = LoadGroup(txn, gid, false);
          const auto role = MemberRole(txn, gid, user);
          if (!g || g->dissolved || !role) return NotFound(kGroupNotFound);
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          for (auto& inv : JoinRequests(txn, gid, now)) *res->add_invitations() = std::move(inv);
          return OkStatus();
        },
        "list join requests");
  });
}

grpc::Status GroupServiceImpl::ReviewJoinRequest(grpc::ServerContext*, const internal::JoinReviewRequest* req,
                                                 v1::GroupResult* res) {
  return Guarded("ReviewJoinRequest", [&]() -> Status {
    const uint64_t admin = req->origin().user_id();
    const auto& r = req->request();
    const uint64_t gid = r.group_id();
    if (admin == 0) return InvalidArgument("the request has no user");
    if (gid == 0) return InvalidArgument("group id is required");
    if (!ValidId(r.user_id())) return InvalidArgument("a valid user id is required");
    std::vector<std::string> names;
    if (auto s = Names({admin, r.user_id()}, &names); !s.ok()) return s;
    const int64_t now = NowMs();
    const int64_t expires = now + int64_t{deps_.limits->group.group_invitation_ttl_s} * 1000;
    const uint32_t max_members = deps_.limits->group.max_group_members;
    std::optional<std::pair<uint64_t, bool>> request;  // (inviter, by_code)
    bool now_invited = false;
    GroupRow after;
    auto st = CommitAction(
        gid, admin, req->origin().session_id(), /*require_member=*/true,
        [&](pqxx::work& txn, GroupRow& g, std::optional<v1::GroupRole> role, ActionPlan* plan) -> Status {
          now_invited = false;
          if (!IsAdmin(role)) return PermissionDenied(kOwnerOrAdmin);
          request = TakeInvitation(txn, gid, r.user_id(), InvitationState::kAwaitingApproval, now);
          if (!request) return NotFound(kNoInvitation);
          if (!r.approve()) return Unchanged(plan);
          if (MemberRole(txn, gid, r.user_id())) return Unchanged(plan);  // joined meanwhile
          const auto [inviter, by_code] = *request;
          // An approved invitation to a large group still waits for the invitee; a code join (the
          // joiner asked) or a smaller group joins now.
          if (!by_code && g.member_count >= deps_.limits->group.invitee_accepts_from_members) {
            UpsertInvitation(txn, gid, r.user_id(), inviter, false, InvitationState::kAwaitingInvitee, expires, now);
            now_invited = true;
            return Unchanged(plan);
          }
          if (g.member_count >= max_members) return FailedPrecondition(CapMessage(max_members));
          InsertMembers(txn, gid, {r.user_id()}, v1::GROUP_ROLE_MEMBER, inviter);
          g.member_count += 1;
          plan->kind = by_code ? v1::GROUP_CHANGE_KIND_MEMBER_JOINED : v1::GROUP_CHANGE_KIND_MEMBERS_ADDED;
          plan->user_ids = {r.user_id()};
          plan->add = {r.user_id()};
          plan->invited_by = inviter;
          plan->by_code = by_code;
          plan->notice = names[0] + " approved " + names[1] + " joining the group";
          return OkStatus();
        },
        &after, "review join request");
    if (!st.ok()) return st;
    if (now_invited) {
      TellInvitation(after, r.user_id(), request->first, false, expires, {r.user_id()}, false);
      res->add_invited_user_ids(r.user_id());
    }
    after.ToProto(res->mutable_group());
    return OkStatus();
  });
}

}  // namespace chat::group
