#pragma once
// Pure input rules of account-service (no I/O). Every function is thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace chat::account {

// E.164: "+", a non-zero digit, then 6..14 more digits (^\+[1-9][0-9]{6,14}$).
bool ValidPhone(std::string_view phone);

// Display name: a name (common/text_policy.h, TextKind::kName) of 1..max_chars code points after
// NFC. On success *name holds the NFC form (what is stored); on failure it is unchanged and the
// status is INVALID_ARGUMENT naming the rule.
Status NormalizeDisplayName(std::string* name, size_t max_chars);

// Greeting of a friend request: a name of 0..max_chars code points after NFC; as above.
Status NormalizeGreeting(std::string* greeting, size_t max_chars);

// Remark name for a contact: a name of 0..max_chars code points after NFC ("" clears); as above.
Status NormalizeRemark(std::string* remark, size_t max_chars);

// A media id (an avatar, later message media): 16-64 characters of [A-Za-z0-9_-], the alphabet the
// media service mints ids in. Says nothing of whether the media exists.
bool ValidMediaId(std::string_view id);

// Handle syntax (WeChat): 6..20 ASCII chars, starts with a letter, then letters, digits, '_' or '-'.
// Random handles ("u_" + 10 of [a-z0-9]) satisfy it.
inline constexpr size_t kMinHandleChars = 6;
inline constexpr size_t kMaxHandleChars = 20;
bool ValidHandle(std::string_view handle);

// Handles a user may not set (lower case): the random handles' prefix "u_", and names that could pass
// for the operator's ("admin...", "official...", "support...", "system...", "wechat...", "weixin...",
// "security...", "moderator...", "deleted...") or mislead ("everyone", "anonymous", "undefined",
// "nobody"). A fixed list: changing it changes who may keep a handle, so it is not configuration.
bool ReservedHandle(std::string_view handle_lower);
// ASCII lower-case copy (handles are ASCII, compared case-insensitively).
std::string LowerAscii(std::string_view s);

// A phone number made fit for logs: country prefix and last 4 digits kept, e.g. "+86******1234".
std::string MaskPhone(std::string_view phone);

}  // namespace chat::account
