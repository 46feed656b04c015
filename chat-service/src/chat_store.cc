#include "chat_service/chat_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>

#include "common/failpoint.h"
#include "common/log.h"
#include "common/shard.h"
#include "common/status.h"

namespace chat::chat_service {

std::string ToOutbox(const CommittedMessage& m) {
  internal::OutboxMessage o;
  *o.mutable_message() = m.message;
  o.set_direct(m.direct);
  o.set_skip_session_id(m.skip_session_id);
  o.set_members_version(m.members_version);
  return o.SerializeAsString();
}

bool FromOutbox(const std::string& payload, uint64_t outbox_id, CommittedMessage* m) {
  internal::OutboxMessage o;
  if (!o.ParseFromString(payload) || o.message().conversation_id().empty()) return false;
  m->message = std::move(*o.mutable_message());
  m->direct = o.direct();
  m->skip_session_id = o.skip_session_id();
  m->members_version = o.members_version();
  m->outbox_id = outbox_id;
  return true;
}

namespace {

// ---- Statements (named, prepared on every pooled connection) ------------------------------------

// The hot path: one statement per send. Dedup on (conversation, sender, client_msg_id); otherwise
// bump last_seq under the row lock, insert the message with that seq and advance the sender's read
// position. Returns one row (duplicate or new) or none (conversation missing / sender not a member).
// $1 conversation, $2 sender, $3 client_msg_id, $4 server_time_ms, $5 content, $6 require_member.
// Contract on a race with a membership change: the member check uses the statement's snapshot, so a
// send that was already waiting for the row lock when a removal committed may still take the next seq
// (ordered right after the removal). The removed user gets no fan-out of it and cannot read it
// (seq > left_seq); the next send sees the removal.
constexpr const char* kSend = "chat_send";
constexpr const char* kSendSql = R"(
WITH dup AS (
  SELECT seq, message_id, server_time_ms FROM messages
  WHERE conversation_id = $1::text AND sender_id = $2::bigint AND client_msg_id = $3::text),
bump AS (
  UPDATE conversations SET last_seq = last_seq + 1, last_message_ms = $4::bigint
  WHERE id = $1::text AND NOT EXISTS (SELECT 1 FROM dup)
    AND (NOT $6::boolean OR EXISTS (
      SELECT 1 FROM conversation_members
      WHERE conversation_id = $1::text AND user_id = $2::bigint AND left_seq IS NULL AND NOT silenced))
  RETURNING last_seq, members_version),
ins AS (
  INSERT INTO messages (conversation_id, seq, message_id, sender_id, client_msg_id, server_time_ms, content)
  SELECT $1::text, last_seq, $1::text || ':' || last_seq, $2::bigint, $3::text, $4::bigint, $5::bytea FROM bump
  RETURNING seq, message_id, server_time_ms),
rd AS (
  UPDATE conversation_members SET read_seq = ins.seq FROM ins
  WHERE conversation_id = $1::text AND user_id = $2::bigint AND read_seq < ins.seq)
SELECT seq, message_id, server_time_ms, true AS duplicate, 0::bigint AS members_version FROM dup
UNION ALL
SELECT i.seq, i.message_id, i.server_time_ms, false, b.members_version FROM ins i, bump b)";

// The whole batch in one statement (one round trip, one plan): $1 conversation ids, $2 senders,
// $3 client_msg_ids, $4 contents (hex), $5 require_member flags, all in batch order; $6 server_time_ms.
// Per conversation the new messages take consecutive seqs in batch order (one UPDATE per
// conversation row, which serializes writers exactly like the one-send statement). A send whose
// (conversation, sender, client_msg_id) is already stored, or repeats an earlier send of this batch,
// is a duplicate of that message. One row back per input, in input order:
//   ord, dup_seq, dup_message_id, dup_time, first_ord, seq, members_version, conversation_exists
// seq is NULL when the send was not stored (not a member, or no such conversation); first_ord is the
// batch position whose message it is. The same snapshot and membership contract as kSendSql; a
// unique violation (a racing replica stored the same client_msg_id) fails the statement, and the
// caller redoes the batch one send at a time with savepoints.
// Lookups of other tables are joins or scalar subqueries on their keys: an EXISTS may be planned
// as a hash of the whole table, built on every execution.
constexpr const char* kSendBatch = "chat_send_batch";
constexpr const char* kSendBatchSql = R"(
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::boolean[])
    WITH ORDINALITY AS t(conv, sender, cmid, content_hex, req_member, ord)),
firsts AS (
  SELECT DISTINCT ON (conv, sender, cmid) ord, conv, sender, cmid FROM input ORDER BY conv, sender, cmid, ord),
dup AS (
  SELECT i.ord, m.seq, m.message_id, m.server_time_ms FROM input i
  JOIN messages m ON m.conversation_id = i.conv AND m.sender_id = i.sender AND m.client_msg_id = i.cmid),
member AS (
  SELECT i.ord FROM input i
  JOIN conversation_members cm ON cm.conversation_id = i.conv AND cm.user_id = i.sender AND cm.left_seq IS NULL
   AND NOT cm.silenced
  WHERE i.req_member),
cand AS (
  SELECT i.* FROM input i JOIN firsts f ON f.ord = i.ord
  WHERE NOT EXISTS (SELECT 1 FROM dup d WHERE d.ord = i.ord)
    AND (NOT i.req_member OR EXISTS (SELECT 1 FROM member mb WHERE mb.ord = i.ord))),
ranked AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.conv ORDER BY c.ord) AS k,
         count(*) OVER (PARTITION BY c.conv) AS n
  FROM cand c),
bump AS (
  UPDATE conversations c SET last_seq = c.last_seq + r.n, last_message_ms = $6::bigint
  FROM (SELECT DISTINCT conv, n FROM ranked) r
  WHERE c.id = r.conv
  RETURNING c.id, c.last_seq - r.n AS base, c.members_version),
ins AS (
  INSERT INTO messages (conversation_id, seq, message_id, sender_id, client_msg_id, server_time_ms, content)
  SELECT r.conv, b.base + r.k, r.conv || ':' || (b.base + r.k), r.sender, r.cmid, $6::bigint,
         decode(r.content_hex, 'hex')
  FROM ranked r JOIN bump b ON b.id = r.conv
  RETURNING conversation_id, seq, sender_id),
rd AS (
  UPDATE conversation_members cm SET read_seq = x.s
  FROM (SELECT conversation_id, sender_id, max(seq) AS s FROM ins GROUP BY 1, 2) x
  WHERE cm.conversation_id = x.conversation_id AND cm.user_id = x.sender_id AND cm.read_seq < x.s)
SELECT i.ord, d.seq, d.message_id, d.server_time_ms, f.ord, b.base + r.k, b.members_version,
       COALESCE((SELECT true FROM conversations c WHERE c.id = i.conv), false)
FROM input i
LEFT JOIN dup d ON d.ord = i.ord
LEFT JOIN firsts f ON f.conv = i.conv AND f.sender = i.sender AND f.cmid = i.cmid
LEFT JOIN ranked r ON r.ord = f.ord
LEFT JOIN bump b ON b.id = r.conv
ORDER BY i.ord)";

constexpr const char* kDedupLookup = "chat_dedup_lookup";
constexpr const char* kDedupLookupSql =
    "SELECT seq, message_id, server_time_ms FROM messages "
    "WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3";

// Creates a direct conversation and its two members on first send.
constexpr const char* kEnsureDirect = "chat_ensure_direct";
constexpr const char* kEnsureDirectSql = R"(
WITH c AS (INSERT INTO conversations (id, kind) VALUES ($1::text, 1) ON CONFLICT (id) DO NOTHING)
INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1::text, $2::bigint), ($1::text, $3::bigint)
ON CONFLICT DO NOTHING)";

constexpr const char* kConversationExists = "chat_conversation_exists";
constexpr const char* kConversationExistsSql = "SELECT 1 FROM conversations WHERE id = $1";

// Whether the user ever belonged to the conversation (a current or a former member): a row, true
// when they are a current member silenced by the group's send rules.
constexpr const char* kEverMember = "chat_ever_member";
constexpr const char* kEverMemberSql =
    "SELECT left_seq IS NULL AND silenced FROM conversation_members WHERE conversation_id = $1 AND user_id = $2";

// Applies a group's complete send rules to its current members ($2 silenced, $3 privileged); only
// rows that change are written.
constexpr const char* kApplyRules = "chat_apply_rules";
constexpr const char* kApplyRulesSql = R"(
UPDATE conversation_members SET silenced = (user_id = ANY($2::bigint[])), privileged = (user_id = ANY($3::bigint[]))
WHERE conversation_id = $1 AND left_seq IS NULL
  AND (silenced <> (user_id = ANY($2::bigint[])) OR privileged <> (user_id = ANY($3::bigint[]))))";

constexpr const char* kEnsureGroup = "chat_ensure_group";
constexpr const char* kEnsureGroupSql =
    "INSERT INTO conversations (id, kind, group_id) VALUES ($1, 2, $2) ON CONFLICT (id) DO NOTHING";

// Locks the conversation row (ordering membership changes against sends) and bumps members_version.
// $2 = the request's membership_version: 0 applies unconditionally; otherwise the row is updated
// (and membership_version set to $2) only if it is newer than the last applied one. The WHERE is
// re-checked on the locked row, so of two racing pushes the older one matches nothing. No row
// back = a stale (or already applied) versioned request.
constexpr const char* kLockForMembership = "chat_lock_for_membership";
constexpr const char* kLockForMembershipSql =
    "UPDATE conversations SET members_version = members_version + 1, "
    "membership_version = CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE membership_version END "
    "WHERE id = $1 AND ($2::bigint = 0 OR membership_version < $2::bigint) "
    "RETURNING last_seq, members_version";

// last_seq of a conversation (the answer to a stale UpdateMembers).
constexpr const char* kLastSeq = "chat_last_seq";
constexpr const char* kLastSeqSql = "SELECT last_seq FROM conversations WHERE id = $1";

// Adds members at joined_seq = $2; a present member is unchanged, a departed one re-joins.
constexpr const char* kAddMembers = "chat_add_members";
constexpr const char* kAddMembersSql = R"(
INSERT INTO conversation_members (conversation_id, user_id, joined_seq, read_seq)
SELECT $1::text, u, $2::bigint, $2::bigint FROM unnest($3::bigint[]) AS u
ON CONFLICT (conversation_id, user_id) DO UPDATE
  SET joined_seq = EXCLUDED.joined_seq, left_seq = NULL, read_seq = EXCLUDED.read_seq
  WHERE conversation_members.left_seq IS NOT NULL)";

constexpr const char* kRemoveMembers = "chat_remove_members";
constexpr const char* kRemoveMembersSql =
    "UPDATE conversation_members SET left_seq = $2 "
    "WHERE conversation_id = $1 AND user_id = ANY($3::bigint[]) AND left_seq IS NULL";

// The caller's view of one conversation: (kind, last_seq, is_member, joined_seq, left_seq or -1, read_seq).
constexpr const char* kMemberView = "chat_member_view";
constexpr const char* kMemberViewSql = R"(
SELECT c.kind, c.last_seq, m.user_id IS NOT NULL, COALESCE(m.joined_seq, 0), COALESCE(m.left_seq, -1),
       COALESCE(m.read_seq, 0)
FROM conversations c LEFT JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = $2
WHERE c.id = $1)";

constexpr const char* kHistoryForward = "chat_history_forward";
constexpr const char* kHistoryForwardSql =
    "SELECT seq, message_id, sender_id, client_msg_id, server_time_ms, content FROM messages "
    "WHERE conversation_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4";

constexpr const char* kHistoryBackward = "chat_history_backward";
constexpr const char* kHistoryBackwardSql =
    "SELECT seq, message_id, sender_id, client_msg_id, server_time_ms, content FROM messages "
    "WHERE conversation_id = $1 AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4";

// The user's conversations on this shard (direct, or groups they currently belong to) with the last
// message, newest first.
constexpr int kMaxConversationsListed = 2000;
constexpr const char* kListConversations = "chat_list_conversations";
constexpr const char* kListConversationsSql = R"(
SELECT c.id, c.kind, COALESCE(c.group_id, 0), c.last_seq, c.last_message_ms, m.joined_seq, m.read_seq,
       msg.seq IS NOT NULL, COALESCE(msg.message_id, ''), COALESCE(msg.sender_id, 0),
       COALESCE(msg.client_msg_id, ''), COALESCE(msg.server_time_ms, 0), msg.content
FROM conversation_members m
JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN messages msg ON msg.conversation_id = c.id AND msg.seq = c.last_seq AND c.last_seq > m.joined_seq
WHERE m.user_id = $1 AND (m.left_seq IS NULL OR c.kind = 1)
ORDER BY c.last_message_ms DESC, c.id
LIMIT $2)";

// read_seq = max(read_seq, min(seq, last_seq)); returns a row only when it moved.
constexpr const char* kMarkRead = "chat_mark_read";
constexpr const char* kMarkReadSql = R"(
UPDATE conversation_members m SET read_seq = LEAST($3::bigint, c.last_seq)
FROM conversations c
WHERE m.conversation_id = $1 AND m.user_id = $2 AND m.left_seq IS NULL AND c.id = m.conversation_id
  AND m.read_seq < LEAST($3::bigint, c.last_seq)
RETURNING m.read_seq)";

constexpr const char* kLoadGroupMembers = "chat_load_group_members";
constexpr const char* kLoadGroupMembersSql = R"(
SELECT c.id, c.members_version, m.user_id, m.joined_seq, COALESCE(m.left_seq, -1)
FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id
WHERE c.id = ANY($1::text[]) AND c.kind = 2)";

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }

// Conversation ids are canonical ("g.<digits>"), so they need no quoting inside an array literal.
std::string TextArray(const std::vector<std::string>& ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += ids[i];
  }
  return s + "}";
}

std::string Bytes(const pqxx::field& f) {
  if (f.is_null()) return {};
  return pqxx::binarystring(f).str();
}

void FillMessage(const pqxx::row& r, const std::string& conversation_id, v1::Message* m) {
  m->set_conversation_id(conversation_id);
  m->set_seq(r[0].as<uint64_t>());
  m->set_message_id(r[1].as<std::string>());
  m->set_sender_id(r[2].as<uint64_t>());
  m->set_client_msg_id(r[3].as<std::string>());
  m->set_server_time_ms(r[4].as<int64_t>());
  if (!r[5].is_null()) m->mutable_content()->ParseFromString(Bytes(r[5]));
}

}  // namespace

void PgChatStore::Prepare(pqxx::connection& c) {
  // Every statement here is keyed by ids whose plan does not depend on the values. Left to choose,
  // PostgreSQL re-plans the send batch statement (a dozen CTEs, ~4 ms) on every execution whenever
  // its estimate favours custom plans, which made planning most of the database's CPU at low rates.
  // A generic plan is made once, from the statistics of that moment: on a young database every
  // table looks tiny and a full scan looks cheapest, and the plan outlives the growth. Every
  // statement of this store reads and writes rows by key, so full scans are ruled out for good.
  pqxx::nontransaction(c).exec("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off");
  c.prepare(kSend, kSendSql);
  c.prepare(kSendBatch, kSendBatchSql);
  c.prepare(kDedupLookup, kDedupLookupSql);
  c.prepare(kEnsureDirect, kEnsureDirectSql);
  c.prepare(kConversationExists, kConversationExistsSql);
  c.prepare(kEverMember, kEverMemberSql);
  c.prepare(kEnsureGroup, kEnsureGroupSql);
  c.prepare(kLockForMembership, kLockForMembershipSql);
  c.prepare(kLastSeq, kLastSeqSql);
  c.prepare(kAddMembers, kAddMembersSql);
  c.prepare(kRemoveMembers, kRemoveMembersSql);
  c.prepare(kMemberView, kMemberViewSql);
  c.prepare(kHistoryForward, kHistoryForwardSql);
  c.prepare(kHistoryBackward, kHistoryBackwardSql);
  c.prepare(kListConversations, kListConversationsSql);
  c.prepare(kMarkRead, kMarkReadSql);
  c.prepare(kLoadGroupMembers, kLoadGroupMembersSql);
  c.prepare(kApplyRules, kApplyRulesSql);
}

namespace {

// Appends v to a PostgreSQL array literal as a quoted element (any text).
void AppendArrayElement(std::string* out, std::string_view v) {
  if (out->size() > 1) out->push_back(',');
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendHex(std::string* out, std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char c : bytes) {
    out->push_back(kDigits[c >> 4]);
    out->push_back(kDigits[c & 15]);
  }
}

// The fan-out record of a newly stored message.
CommittedMessage Committed(const PendingSend& s, const v1::SendMessageResult& r, uint64_t members_version) {
  CommittedMessage cm;
  cm.direct = s.direct;
  cm.skip_session_id = s.skip_session_id;
  cm.members_version = members_version;
  v1::Message& m = cm.message;
  m.set_conversation_id(s.conversation_id);
  m.set_seq(r.seq());
  m.set_message_id(r.message_id());
  m.set_sender_id(s.sender_id);
  m.set_client_msg_id(s.client_msg_id);
  m.set_server_time_ms(r.server_time_ms());
  *m.mutable_content() = s.content;
  return cm;
}

// Runs kSendBatchSql for `sends` (conversation-sorted) in `t`; fills outs[i] for sends[i] and appends
// the new messages to `committed` in seq order per conversation.
// The replies to a request on a group conversation that the caller may not use. Someone who never
// belonged gets exactly the reply of a conversation that does not exist, so nobody can probe which
// groups exist (protocol.md section 11); a former member, who knows the group, is told they left.
constexpr const char kConversationNotFound[] = "conversation not found";
constexpr const char kNoLongerMember[] = "you are no longer a member of this group";
constexpr const char kMuted[] = "you are muted in this group";

Status NotFoundOrLeft(bool former_member) {
  return former_member ? PermissionDenied(kNoLongerMember) : NotFound(kConversationNotFound);
}

// For a send refused by the member check of an existing group conversation (the error path only).
Status RefusedGroupSend(pqxx::transaction_base& t, const PendingSend& s) {
  pqxx::result r = t.exec_prepared(kEverMember, s.conversation_id, I64(s.sender_id));
  if (!r.empty() && r[0][0].as<bool>()) return PermissionDenied(kMuted);
  return NotFoundOrLeft(!r.empty());
}

void ExecSendBatch(pqxx::transaction_base& t, const std::vector<const PendingSend*>& sends, int64_t now_ms,
                   const std::vector<SendOutcome*>& outs, std::vector<CommittedMessage>* committed) {
  std::string convs = "{", senders = "{", cmids = "{", contents = "{", members = "{";
  std::string hex;
  for (const PendingSend* s : sends) {
    AppendArrayElement(&convs, s->conversation_id);
    if (senders.size() > 1) senders.push_back(',');
    senders += std::to_string(s->sender_id);
    AppendArrayElement(&cmids, s->client_msg_id);
    hex.clear();
    AppendHex(&hex, s->content.SerializeAsString());
    AppendArrayElement(&contents, hex);
    if (members.size() > 1) members.push_back(',');
    members += s->require_member ? "t" : "f";
  }
  for (std::string* a : {&convs, &senders, &cmids, &contents, &members}) a->push_back('}');
  pqxx::result r = t.exec_prepared(kSendBatch, convs, senders, cmids, contents, members, now_ms);
  if (r.size() != sends.size()) throw std::runtime_error("send batch: row count mismatch");
  for (const auto& row : r) {
    const size_t i = row[0].as<size_t>() - 1;
    const PendingSend& s = *sends.at(i);
    SendOutcome* out = outs[i];
    if (!row[1].is_null()) {  // already stored
      out->status = OkStatus();
      out->result.set_seq(row[1].as<uint64_t>());
      out->result.set_message_id(row[2].as<std::string>());
      out->result.set_server_time_ms(row[3].as<int64_t>());
      out->result.set_duplicate(true);
      continue;
    }
    if (row[5].is_null()) {
      out->status = row[7].as<bool>() ? RefusedGroupSend(t, s) : NotFound(kConversationNotFound);
      continue;
    }
    const uint64_t seq = row[5].as<uint64_t>();
    out->status = OkStatus();
    out->result.set_seq(seq);
    out->result.set_message_id(s.conversation_id + ":" + std::to_string(seq));
    out->result.set_server_time_ms(now_ms);
    const bool first = row[4].as<size_t>() - 1 == i;
    out->result.set_duplicate(!first);  // a repeat of an earlier send of this batch
    if (!first) continue;
    committed->push_back(Committed(s, out->result, row[6].as<uint64_t>()));
  }
}

// Runs the send statement for one send in `t` and fills `out` (and `committed` for a new message).
void ExecSend(pqxx::transaction_base& t, const PendingSend& s, int64_t now_ms, SendOutcome* out,
              std::vector<CommittedMessage>* committed) {
  const std::string content = s.content.SerializeAsString();
  pqxx::result r = t.exec_prepared(kSend, s.conversation_id, I64(s.sender_id), s.client_msg_id, now_ms,
                                   pqxx::binarystring(content.data(), content.size()), s.require_member);
  if (r.empty()) {
    if (t.exec_prepared(kConversationExists, s.conversation_id).empty())
      out->status = NotFound(kConversationNotFound);
    else
      out->status = RefusedGroupSend(t, s);
    return;
  }
  const auto row = r[0];
  out->status = OkStatus();
  out->result.set_seq(row[0].as<uint64_t>());
  out->result.set_message_id(row[1].as<std::string>());
  out->result.set_server_time_ms(row[2].as<int64_t>());
  out->result.set_duplicate(row[3].as<bool>());
  if (out->result.duplicate()) return;
  committed->push_back(Committed(s, out->result, row[4].as<uint64_t>()));
}

}  // namespace

std::vector<SendOutcome> PgChatStore::CommitSends(const std::vector<const PendingSend*>& sends,
                                                  const OnCommit& on_commit) {
  const size_t n = sends.size();
  std::vector<SendOutcome> out(n);
  if (n == 0) return out;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sends[a]->conversation_id < sends[b]->conversation_id; });
  std::vector<const PendingSend*> to_create;  // direct conversations perhaps not created yet
  {
    std::lock_guard lk(known_mu_);
    std::unordered_set<std::string> seen;
    for (size_t i : order) {
      const PendingSend* s = sends[i];
      if (s->direct && !known_direct_.count(s->conversation_id) && seen.insert(s->conversation_id).second)
        to_create.push_back(s);
    }
  }
  const int64_t now_ms = NowMs();
  std::vector<CommittedMessage> committed;
  // Every attempt (WithTransaction retries deadlocks) starts from nothing.
  auto begin = [&](pqxx::work& w) {
    committed.clear();
    for (auto& o : out) o = SendOutcome{};
    for (const PendingSend* s : to_create)
      w.exec_prepared(kEnsureDirect, s->conversation_id, I64(s->user_a), I64(s->user_b));
  };
  // The whole batch in one statement. A statement error (not a deadlock, which is retried as a
  // whole) rolls it back and asks for the per-send path instead.
  bool per_send_needed = false;
  auto whole_batch = [&](pqxx::work& w) -> Status {
    begin(w);
    per_send_needed = false;
    std::vector<const PendingSend*> sorted;
    std::vector<SendOutcome*> outs;
    sorted.reserve(n);
    outs.reserve(n);
    for (size_t i : order) {
      sorted.push_back(sends[i]);
      outs.push_back(&out[i]);
    }
    try {
      ExecSendBatch(w, sorted, now_ms, outs, &committed);
    } catch (const pqxx::transaction_rollback&) {
      throw;  // deadlock / serialization: WithTransaction retries the whole batch
    } catch (const pqxx::sql_error& e) {
      spdlog::info("send batch failed ({}); redoing it one send at a time with savepoints", e.what());
      per_send_needed = true;
      return Unavailable("send batch rolled back");  // never seen by a sender: the batch is redone
    }
    return OkStatus();
  };
  // One savepoint per send, so one failing send (most likely a duplicate committed by another
  // replica after the batch statement's snapshot) fails alone.
  auto one_by_one = [&](pqxx::work& w) -> Status {
    begin(w);
    for (size_t i : order) {
      const PendingSend& s = *sends[i];
      bool failed = false;
      {
        pqxx::subtransaction sub(w, "send");
        const size_t before = committed.size();
        try {
          ExecSend(sub, s, now_ms, &out[i], &committed);
          sub.commit();
        } catch (const pqxx::transaction_rollback&) {
          throw;
        } catch (const pqxx::sql_error& e) {
          spdlog::info("send to {} failed on its own: {}", s.conversation_id, e.what());
          committed.resize(before);
          failed = true;
        }
      }
      if (!failed) continue;
      pqxx::result r = w.exec_prepared(kDedupLookup, s.conversation_id, I64(s.sender_id), s.client_msg_id);
      if (!r.empty()) {
        out[i].status = OkStatus();
        out[i].result.set_seq(r[0][0].as<uint64_t>());
        out[i].result.set_message_id(r[0][1].as<std::string>());
        out[i].result.set_server_time_ms(r[0][2].as<int64_t>());
        out[i].result.set_duplicate(true);
      } else {
        out[i].result.Clear();
        out[i].status = Internal("message could not be stored");
      }
    }
    return OkStatus();
  };
  // Under the commit-order mutex, right after COMMIT: fan-out sees batches in commit order.
  auto publish = [&] {
    if (on_commit && !committed.empty()) on_commit(std::move(committed));
  };

  Status st = WithOrderedCommit(pool_, commit_order_mu_, whole_batch, publish, "send batch");
  if (per_send_needed) st = WithOrderedCommit(pool_, commit_order_mu_, one_by_one, publish, "send batch, per send");
  if (!st.ok()) {
    for (auto& o : out) {
      o.status = st;
      o.result.Clear();
    }
    return out;
  }
  if (!to_create.empty()) {
    std::lock_guard lk(known_mu_);
    if (known_direct_.size() > 1000000) known_direct_.clear();
    for (const PendingSend* s : to_create) known_direct_.insert(s->conversation_id);
  }
  return out;
}

Status PgChatStore::UpdateMembers(const internal::UpdateMembersRequest& req, uint64_t* seq, const OnCommit& on_commit) {
  std::vector<CommittedMessage> committed;
  const int64_t now_ms = NowMs();
  const std::string adds = BigintArray(req.add_user_ids());
  const std::string removes = BigintArray(req.remove_user_ids());
  return WithOrderedCommit(
      pool_, commit_order_mu_,
      [&](pqxx::work& w) -> Status {
        committed.clear();
        w.exec_prepared(kEnsureGroup, req.conversation_id(), I64(req.group_id()));
        pqxx::result lock = w.exec_prepared(kLockForMembership, req.conversation_id(), I64(req.membership_version()));
        if (lock.empty()) {
          // Versioned and not newer than what this conversation already reflects: a delayed push or
          // a repeated full re-sync. Change nothing, post nothing, answer with the current seq.
          *seq = w.exec_prepared(kLastSeq, req.conversation_id()).at(0)[0].as<uint64_t>();
          return OkStatus();
        }
        const int64_t last_seq = lock[0][0].as<int64_t>();
        const uint64_t version = lock[0][1].as<uint64_t>();
        size_t changed = 0;
        if (req.add_user_ids_size() > 0)
          changed += w.exec_prepared(kAddMembers, req.conversation_id(), last_seq, adds).affected_rows();
        if (req.remove_user_ids_size() > 0)
          changed += w.exec_prepared(kRemoveMembers, req.conversation_id(), last_seq, removes).affected_rows();
        if (req.has_rules())
          w.exec_prepared(kApplyRules, req.conversation_id(), BigintArray(req.rules().silenced_user_ids()),
                          BigintArray(req.rules().privileged_user_ids()));
        *seq = static_cast<uint64_t>(last_seq);
        const bool pure_notice = req.add_user_ids_size() == 0 && req.remove_user_ids_size() == 0;
        if (!req.notice().empty() && (changed > 0 || pure_notice)) {
          PendingSend notice;
          notice.conversation_id = req.conversation_id();
          notice.direct = false;
          notice.sender_id = 0;
          // Retries must not repeat the notice: a membership change posts only when it changed
          // something, and a versioned request (every group action: roles, mutes, renames) is
          // applied once; both are keyed by the (unique) members_version. An unversioned pure
          // notice is keyed by its text.
          notice.client_msg_id =
              pure_notice && req.membership_version() == 0
                  ? fmt::format("sys.n.{:016x}", Fnv1a64(std::to_string(req.actor_id()) + "\n" + req.notice()))
                  : fmt::format("sys.m.{}", version);
          notice.content.mutable_system()->set_text(req.notice());
          SendOutcome o;
          ExecSend(w, notice, now_ms, &o, &committed);
          if (!o.status.ok()) return o.status;
          *seq = o.result.seq();
          if (outbox_ && !committed.empty())
            committed.back().outbox_id = outbox_->Append(w, kOutboxMessageTopic, ToOutbox(committed.back()));
        }
        return OkStatus();
      },
      [&] {
        Failpoint("chat.update_members.after_commit");  // fault tests: die between commit and publish
        if (on_commit && !committed.empty()) on_commit(std::move(committed));
      },
      "update members");
}

// Upper bound on the encoded messages of one history page (the gateway's per-session send queue
// defaults to 4 MiB; a page must fit with room for pushes).
constexpr size_t kHistoryPageMaxBytes = 1 << 20;

Status PgChatStore::GetHistory(uint64_t user_id, const v1::GetHistoryRequest& req, uint32_t limit,
                               v1::HistoryResult* out) {
  const auto parsed = ParseConversationId(req.conversation_id());
  return WithTransaction(
      pool_,
      [&](pqxx::work& w) -> Status {
        out->Clear();
        pqxx::result v = w.exec_prepared(kMemberView, req.conversation_id(), I64(user_id));
        const bool participant =
            parsed && parsed->kind == ParsedConversation::kDirect && (parsed->a == user_id || parsed->b == user_id);
        if (v.empty()) {
          if (participant) return OkStatus();  // no message yet
          if (parsed && parsed->kind == ParsedConversation::kDirect)
            return PermissionDenied("you are not part of this conversation");
          return NotFound(kConversationNotFound);
        }
        const bool member = v[0][2].as<bool>();  // current or former: a former one reads up to left_seq
        if (!member) {
          if (participant || (parsed && parsed->kind == ParsedConversation::kDirect))
            return PermissionDenied("you are not part of this conversation");
          return NotFound(kConversationNotFound);
        }
        const int64_t last_seq = v[0][1].as<int64_t>();
        const int64_t joined = v[0][3].as<int64_t>();
        const int64_t left = v[0][4].as<int64_t>();
        const int64_t hi = left >= 0 ? std::min(left, last_seq) : last_seq;  // newest readable seq
        out->set_last_seq(static_cast<uint64_t>(hi));
        const int64_t fetch = static_cast<int64_t>(limit) + 1;
        pqxx::result r;
        if (!req.backward()) {
          const int64_t after =
              std::max<int64_t>(joined, static_cast<int64_t>(std::min<uint64_t>(req.after_seq(), INT64_MAX)));
          r = w.exec_prepared(kHistoryForward, req.conversation_id(), after, hi, fetch);
        } else {
          int64_t before = hi + 1;
          if (req.before_seq() != 0)
            before = std::min<int64_t>(before, static_cast<int64_t>(std::min<uint64_t>(req.before_seq(), INT64_MAX)));
          r = w.exec_prepared(kHistoryBackward, req.conversation_id(), before, joined, fetch);
        }
        // Rows come nearest-first (ascending forward, descending backward). A page also stops at
        // kHistoryPageMaxBytes so one reply always fits a session's send queue (at least one message).
        size_t take = std::min<size_t>(r.size(), limit);
        bool more = r.size() > limit;
        std::vector<v1::Message> page(take);
        size_t bytes = 0;
        for (size_t i = 0; i < take; ++i) {
          FillMessage(r[static_cast<pqxx::result::size_type>(i)], req.conversation_id(), &page[i]);
          bytes += page[i].ByteSizeLong();
          if (bytes > kHistoryPageMaxBytes && i > 0) {
            take = i;
            more = true;
            break;
          }
        }
        out->set_has_more(more);
        for (size_t i = 0; i < take; ++i) {
          const size_t k = req.backward() ? take - 1 - i : i;  // always ascending
          *out->add_messages() = std::move(page[k]);
        }
        return OkStatus();
      },
      "get history");
}

Status PgChatStore::ListConversations(uint64_t user_id, v1::ConversationsResult* out) {
  return WithTransaction(
      pool_,
      [&](pqxx::work& w) -> Status {
        out->Clear();
        pqxx::result r = w.exec_prepared(kListConversations, I64(user_id), kMaxConversationsListed);
        for (const auto& row : r) {
          auto* c = out->add_conversations();
          const std::string id = row[0].as<std::string>();
          c->set_conversation_id(id);
          const int kind = row[1].as<int>();
          c->set_kind(kind == 1 ? v1::CONVERSATION_KIND_DIRECT : v1::CONVERSATION_KIND_GROUP);
          const uint64_t last_seq = row[3].as<uint64_t>();
          const uint64_t joined = row[5].as<uint64_t>();
          const uint64_t read = row[6].as<uint64_t>();
          c->set_last_seq(last_seq);
          c->set_read_seq(read);
          const uint64_t seen = std::max(read, joined);
          c->set_unread_count(last_seq > seen ? last_seq - seen : 0);
          c->set_last_message_time_ms(row[4].as<int64_t>());
          c->set_first_seq(joined + 1);
          if (kind == 1) {
            if (auto p = ParseConversationId(id)) c->set_peer_user_id(p->a == user_id ? p->b : p->a);
          } else {
            c->set_group_id(row[2].as<uint64_t>());
          }
          if (row[7].as<bool>()) {
            v1::Message* m = c->mutable_last_message();
            m->set_conversation_id(id);
            m->set_seq(last_seq);
            m->set_message_id(row[8].as<std::string>());
            m->set_sender_id(row[9].as<uint64_t>());
            m->set_client_msg_id(row[10].as<std::string>());
            m->set_server_time_ms(row[11].as<int64_t>());
            if (!row[12].is_null()) m->mutable_content()->ParseFromString(Bytes(row[12]));
          }
        }
        return OkStatus();
      },
      "list conversations");
}

Status PgChatStore::MarkRead(uint64_t user_id, const std::string& conversation_id, uint64_t seq, uint64_t* read_seq,
                             bool* moved) {
  const auto parsed = ParseConversationId(conversation_id);
  const bool direct = parsed && parsed->kind == ParsedConversation::kDirect;
  return WithTransaction(
      pool_,
      [&](pqxx::work& w) -> Status {
        *moved = false;
        *read_seq = 0;
        const int64_t target = static_cast<int64_t>(std::min<uint64_t>(seq, INT64_MAX));
        pqxx::result r = w.exec_prepared(kMarkRead, conversation_id, I64(user_id), target);
        if (!r.empty()) {
          *moved = true;
          *read_seq = r[0][0].as<uint64_t>();
          return OkStatus();
        }
        pqxx::result v = w.exec_prepared(kMemberView, conversation_id, I64(user_id));
        if (v.empty()) {
          if (direct && (parsed->a == user_id || parsed->b == user_id)) return OkStatus();
          if (direct) return PermissionDenied("you are not part of this conversation");
          return NotFound(kConversationNotFound);
        }
        if (!v[0][2].as<bool>() || v[0][4].as<int64_t>() >= 0) {
          if (direct) return PermissionDenied("you are not part of this conversation");
          return NotFoundOrLeft(v[0][2].as<bool>());
        }
        *read_seq = v[0][5].as<uint64_t>();
        return OkStatus();
      },
      "mark read");
}

Status PgChatStore::LoadGroupMembers(const std::vector<std::string>& conversation_ids,
                                     std::vector<std::pair<std::string, GroupMembers>>* out) {
  const std::string ids = TextArray(conversation_ids);
  return WithTransaction(
      pool_,
      [&](pqxx::work& w) -> Status {
        out->clear();
        pqxx::result r = w.exec_prepared(kLoadGroupMembers, ids);
        std::unordered_map<std::string, size_t> index;
        for (const auto& row : r) {
          const std::string id = row[0].as<std::string>();
          auto [it, inserted] = index.emplace(id, out->size());
          if (inserted) {
            out->emplace_back(id, GroupMembers{});
            out->back().second.members_version = row[1].as<uint64_t>();
          }
          MemberWindow mw;
          mw.user_id = row[2].as<uint64_t>();
          mw.joined_seq = row[3].as<uint64_t>();
          const int64_t left = row[4].as<int64_t>();
          mw.left_seq = left >= 0 ? static_cast<uint64_t>(left) : UINT64_MAX;
          (*out)[it->second].second.members.push_back(mw);
        }
        return OkStatus();
      },
      "load group members");
}

}  // namespace chat::chat_service
