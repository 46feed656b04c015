#pragma once
// chat-cli: a command-line client over chat::client (see client/README.md and `chat-cli --help`).
// Split from main.cc so the pieces with logic (argument and env-file parsing, profiles) can be
// unit-tested.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chat/v1/client.pb.h"

namespace chat::cli {

// Command-line words split into options with a value, flags and positional words.
// "--name value" and "--name=value" are accepted anywhere; "--" makes every later word positional.
struct Args {
  std::map<std::string, std::string> options;  // without the leading "--"
  std::set<std::string> flags;
  std::vector<std::string> positional;
};
// Returns false and *error for an unknown option or an option missing its value.
bool ParseArgs(const std::vector<std::string>& words, Args* out, std::string* error);

// KEY=VALUE lines (optional "export ", optional quotes, '#' comments) of a cluster env file.
// A missing file gives an empty map.
std::map<std::string, std::string> ReadEnvFile(const std::string& path);
// Splits "a,b,,c" into {"a","b","c"}.
std::vector<std::string> SplitList(const std::string& s);

// What chat-cli remembers between runs, per --profile, in <config dir>/<name>.json (mode 0600).
struct Profile {
  std::string token;
  int64_t token_expires_ms = 0;
  uint64_t user_id = 0;
  std::string handle;
  std::string display_name;
  std::string device_id;
};
// <dir> is $CHAT_CLI_CONFIG_DIR if set, else $HOME/.config/chat-cli.
std::string ProfilePath(const std::string& name);
std::optional<Profile> LoadProfile(const std::string& path, std::string* error);
// Writes atomically (temp file + rename), creating the directory (0700); file mode 0600.
bool SaveProfile(const std::string& path, const Profile& profile, std::string* error);

// How chat-cli shows a profile ("@handle (Display Name)") and a message body. Every string in them
// that came from the server or another user is escaped with EscapeForTerminal (common/utf8.h), so
// printing them can neither move the cursor, clear the screen, reorder the line nor start a new one.
std::string Who(const v1::UserProfile& profile);
std::string DescribeContent(const v1::MessageContent& content);

// `text` as a QR code (libqrencode, error correction M) drawn with half-block characters for a
// terminal with light text on a dark background: two module rows per line, a 4-module quiet zone,
// light modules as glyphs. Empty when the text cannot be encoded.
std::string QrTerminalArt(const std::string& text);

// The whole program; returns the exit code (0 ok, 1 error, 2 usage). SIGINT/SIGTERM must already
// be blocked in every thread (main does it first): `watch` collects them with sigtimedwait.
int Main(const std::vector<std::string>& words);

}  // namespace chat::cli
