#pragma once
// PgChatStore: every SQL statement of chat-service, over one shard's database.
//
// Threads: all methods are thread-safe (each takes its own pooled connection). Methods that write
// messages take `on_commit`, which runs after the commit while the store's commit-order mutex is
// held; anything enqueued from it (fan-out) is therefore in commit order on this process, which is
// per-conversation seq order because the conversation row lock orders the commits.
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "chat/internal/services.pb.h"
#include "chat/v1/client.pb.h"
#include "common/error.h"
#include "common/outbox.h"
#include "common/pg.h"

namespace chat::chat_service {

// One validated and authorized send waiting for its group commit.
struct PendingSend {
  std::string conversation_id;
  bool direct = true;  // direct: the participants are user_a/user_b
  uint64_t user_a = 0;
  uint64_t user_b = 0;
  uint64_t sender_id = 0;  // 0 = system notice
  std::string client_msg_id;
  v1::MessageContent content;
  uint64_t skip_session_id = 0;
  // Group sends by users: the sender must be a current member (checked in the same statement).
  bool require_member = false;
};

struct SendOutcome {
  Status status;
  v1::SendMessageResult result;
};

// Outbox topic of a committed message whose event must not be lost (internal::OutboxMessage).
inline constexpr const char* kOutboxMessageTopic = "chat.message";

// A message that committed (never a duplicate), with what fan-out needs.
struct CommittedMessage {
  v1::Message message;
  bool direct = true;
  uint64_t skip_session_id = 0;
  uint64_t members_version = 0;  // conversations.members_version when the seq was taken
  uint64_t outbox_id = 0;        // the outbox row holding this message's event (common/outbox.h), 0 = none
};
using OnCommit = std::function<void(std::vector<CommittedMessage>&&)>;

// A committed message as its outbox row holds it, and back (false: not a valid row).
std::string ToOutbox(const CommittedMessage& m);
bool FromOutbox(const std::string& payload, uint64_t outbox_id, CommittedMessage* m);

// A membership row as fan-out needs it: the user may receive seq s iff joined_seq < s <= left_seq.
struct MemberWindow {
  uint64_t user_id = 0;
  uint64_t joined_seq = 0;
  uint64_t left_seq = UINT64_MAX;  // UINT64_MAX while a current member
};
struct GroupMembers {
  uint64_t members_version = 0;
  std::vector<MemberWindow> members;
};

class PgChatStore {
 public:
  // `outbox` (may be null: tests of the store alone) keeps membership notices' events until delivered.
  explicit PgChatStore(PgPool& pool, Outbox* outbox = nullptr) : pool_(pool), outbox_(outbox) {}

  // Declares the prepared statements on a new connection (pass to PgPool).
  static void Prepare(pqxx::connection& c);

  // Group commit: all sends in one transaction, in conversation order (so concurrent batches of
  // several replicas lock conversation rows in one order), each send's seq = last_seq + 1 taken
  // under the conversation row lock. Returns one outcome per send, in input order. A send that
  // fails on its own (not a member, a duplicate racing in from another replica) does not fail the
  // others; a failed transaction fails them all with its status (UNAVAILABLE when the database is
  // down) and writes nothing.
  std::vector<SendOutcome> CommitSends(const std::vector<const PendingSend*>& sends, const OnCommit& on_commit);

  // Applies a group membership change (idempotent) and the optional notice, in one transaction.
  // *seq = the notice's seq, or the current last_seq when no notice was written.
  // Versioned requests (membership_version > 0) are ordered: one at or below the version the
  // conversation last applied changes nothing, posts no notice and returns OK with the current
  // last_seq (so a delayed push cannot undo a newer change, and a repeated full re-sync is a no-op).
  // membership_version 0 is applied unconditionally and leaves the stored version as it is.
  // The notice's event is in the outbox (topic kOutboxMessageTopic) in the same transaction, so it is
  // announced even when the process dies between the commit and on_commit.
  Status UpdateMembers(const internal::UpdateMembersRequest& req, uint64_t* seq, const OnCommit& on_commit);

  // limit is already clamped by the caller.
  Status GetHistory(uint64_t user_id, const v1::GetHistoryRequest& req, uint32_t limit, v1::HistoryResult* out);
  Status ListConversations(uint64_t user_id, v1::ConversationsResult* out);
  // *moved tells whether read_seq advanced.
  Status MarkRead(uint64_t user_id, const std::string& conversation_id, uint64_t seq, uint64_t* read_seq, bool* moved);

  // Current member windows of group conversations (missing ones are absent from *out).
  Status LoadGroupMembers(const std::vector<std::string>& conversation_ids,
                          std::vector<std::pair<std::string, GroupMembers>>* out);

 private:
  PgPool& pool_;
  Outbox* const outbox_;
  std::mutex commit_order_mu_;  // see the class comment
  // Direct conversations known to exist (rows are never deleted), so the hot path skips creating them.
  std::mutex known_mu_;
  std::unordered_set<std::string> known_direct_;
};

}  // namespace chat::chat_service
