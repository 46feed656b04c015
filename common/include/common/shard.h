#pragma once
// Sharding is a pure function of an id and the shard count (jump consistent hash), so any process
// routes the same way from the same config. Growing N moves only ~1/N of the keys.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chat {

// Lamping & Veach jump consistent hash: key -> [0, buckets).
uint32_t JumpConsistentHash(uint64_t key, uint32_t buckets);
// Stable 64-bit hashes (never std::hash: it may differ between builds).
uint64_t Fnv1a64(std::string_view s);
uint64_t Mix64(uint64_t x);

uint32_t ShardOfUser(uint64_t user_id, uint32_t shards);
uint32_t ShardOfGroup(uint64_t group_id, uint32_t shards);
uint32_t ShardOfConversation(std::string_view conversation_id, uint32_t shards);
// Phone-keyed account requests (code, sign-up, log-in) go to this shard; it mints user ids that
// ShardOfUser maps back to the same shard.
uint32_t ShardOfPhone(std::string_view phone, uint32_t shards);
// The account shard that holds the claim of a settable handle (lower case), whoever sets it: the
// one place that decides between users of different shards who want the same handle.
uint32_t ShardOfHandle(std::string_view handle_lower, uint32_t shards);

// Conversation ids: "d.<lo>.<hi>" for the direct chat of two users, "g.<group id>" for a group.
std::string DirectConversationId(uint64_t a, uint64_t b);
std::string GroupConversationId(uint64_t group_id);

struct ParsedConversation {
  enum Kind { kDirect, kGroup } kind;
  uint64_t a = 0;  // direct: smaller user id; group: group id
  uint64_t b = 0;  // direct: larger user id
};
// Returns nullopt for anything that is not a canonical id (also rejects "d.5.5", "d.7.3").
std::optional<ParsedConversation> ParseConversationId(std::string_view id);

// A personal QR code's token: "q1", the user id as 16 lowercase hex digits, then the user's QR secret
// (kQrSecretHexChars lowercase hex digits). Opaque to clients; servers route it by its user.
inline constexpr size_t kQrSecretHexChars = 32;
std::string QrToken(uint64_t user_id, std::string_view secret_hex);
// The user a well-formed token names (nullopt for anything else); *secret_hex gets its secret.
std::optional<uint64_t> ParseQrToken(std::string_view token, std::string* secret_hex = nullptr);

// A group invite code: "g1", a route id as 16 lowercase hex digits, then kInviteSecretHexChars
// lowercase hex digits of randomness. The route id is not the group id: it is minted so that
// ShardOfGroup(route id) is the group's shard, so the gateway can route a code without anyone
// learning which group it opens. group-service stores only the code's SHA-256.
inline constexpr size_t kInviteSecretHexChars = 32;
std::string GroupInviteToken(uint64_t route_id, std::string_view secret_hex);
// The route id of a well-formed code (nullopt for anything else).
std::optional<uint64_t> ParseGroupInviteToken(std::string_view token);

}  // namespace chat
