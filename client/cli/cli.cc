#include "cli.h"

#include <fcntl.h>
#include <qrencode.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "client/api.h"
#include "client/connection.h"
#include "common/shard.h"
#include "common/status_code.h"
#include "common/utf8.h"

namespace chat::cli {

namespace json = boost::json;
using client::Connection;
using client::ConnectOptions;
using std::chrono::milliseconds;

namespace {

constexpr const char* kDefaultEnvFile = "/tmp/chat-cluster/cluster.env";
constexpr const char* kDefaultProfile = "default";
constexpr uint32_t kDefaultHistoryLimit = 20;
constexpr uint32_t kSyncPageSize = 100;
constexpr milliseconds kWatchPoll{200};
constexpr milliseconds kBackoffInitial{500};
constexpr milliseconds kBackoffMax{10000};

constexpr const char* kHelp = R"(chat-cli - command-line client for the chat cluster

Usage: chat-cli [global options] COMMAND [arguments]

Global options:
  --url URL        gateway, e.g. ws://127.0.0.1:8080/ws (default: every entry of GATEWAY_URLS in
                   the env file, tried in order)
  --env FILE       cluster env file (default /tmp/chat-cluster/cluster.env); it provides
                   GATEWAY_URLS=ws://...,ws://... and CHAT_CODES_FILE=...
  --profile NAME   which saved login to use (default "default"); stored in
                   $CHAT_CLI_CONFIG_DIR or ~/.config/chat-cli/NAME.json, mode 0600
  --json           speak the JSON subprotocol (chat.v1.json) instead of protobuf
  --code CODE      the one-time code for signup/login (otherwise read from CHAT_CODES_FILE,
                   the development code sender's file, or asked for on stdin)
  --timeout MS     per-request timeout (default 5000)
  -h, --help       this text

Account:
  request-code --phone P            send a one-time code to P
  signup --phone P --name N         create an account and save its token in the profile
  login --phone P                   log in and save the token in the profile
  whoami                            your account
  set-handle HANDLE                 choose your handle (6-20 characters; once a year)
  set-profile --name N [--avatar MEDIA_ID] [--whats-up TEXT]
                                    your whole public profile (what is left out is cleared);
                                    your contacts are told
  privacy phone-lookup on|off       whether others may find you by your phone number (off by
                                    default)
  devices                           your signed-in devices (sessions)
  logout [SESSION_ID|all]           log out this device, another one (its session id from
                                    `devices`), or every device
  change-phone --phone NEW          move your account to another number (codes to both:
                                    --code for the current number, --new-code for NEW)
  delete-account                    delete your account (a code to your number; --code)
  lookup HANDLE                     find a user by handle
  find-phone PHONE                  find a user by phone number (only one who allows it)
  qr [--rotate]                     show your personal QR code (--rotate: a new one; the old one
                                    stops working)
  scan TOKEN [--add [--greeting G]] who a personal QR code's token names (--add: send them a
                                    friend request)

Contacts:
  add-friend HANDLE|USER_ID [--greeting G] [--source S]
                                    send a friend request (S: how you found them: handle,
                                    phone, card, qr, group, nearby, shake; default handle)
  send-card TO CONTACT              share CONTACT (handle or id) with TO as a contact card
  requests [--sent]                 pending friend requests to you (--sent: the ones you sent)
  accept HANDLE|USER_ID             accept a friend request
  ignore HANDLE|USER_ID             drop a friend request without telling the sender
  contacts                          your contacts and their direct conversations, and the
                                    users you blocked
  remark HANDLE|USER_ID [NAME...]   your private name for a contact (no NAME: clear it)
  block HANDLE|USER_ID              refuse their messages and friend requests
  unblock HANDLE|USER_ID            take the block back
  delete-contact HANDLE|USER_ID     delete a contact (one way: they still list you; neither
                                    can write until a new friend request)
  labels                            your labels (private named sets of contacts)
  label NAME [CONTACT...] [--id ID] a new label of these contacts (--id: replace that one)
  delete-label ID                   delete a label (its contacts stay contacts)

Messages:
  send HANDLE|CONVERSATION_ID TEXT...     send a text (a handle means your direct
                                          conversation with that contact)
  history HANDLE|CONVERSATION_ID [--limit N]   the newest N messages (default 20)
  conversations                     your conversations with unread counts
  read CONVERSATION_ID SEQ          mark read up to SEQ
  watch                             stay connected and print every event as one line until
                                    Ctrl-C; reconnects with backoff and then fetches whatever
                                    was missed, so no message is skipped or printed twice

Groups:
  create-group NAME HANDLE...       create a group with these contacts
  group-add GROUP_ID HANDLE...      add contacts to a group
  groups                            your groups
  members GROUP_ID                  a group's members
  leave GROUP_ID                    leave a group (an owner transfers ownership first)
  group-code GROUP_ID               make an invite code (valid 7 days) and draw it as a QR code
  group-preview CODE                what an invite code shows: name, size, a few names
  join-group CODE                   join a group by its invite code
  rename-group GROUP_ID [NAME...]   owner, admins: rename (no NAME: unnamed)
  kick GROUP_ID HANDLE...           owner, admins: remove members
  mute GROUP_ID HANDLE [--off]      owner, admins: a member may not send (--off: may again)
  mute-all GROUP_ID [--off]         owner, admins: only the owner and admins may send
  group-admin GROUP_ID HANDLE [--off]  owner: appoint (--off: remove) an admin (at most 3)
  group-owner GROUP_ID HANDLE       owner: make a member the owner
  group-confirm GROUP_ID [--off]    owner: invitations need approval, codes admit nobody
  dissolve GROUP_ID                 owner: end the group for everyone
  invitations                       invitations waiting for your answer (groups of 100 or more)
  accept-group GROUP_ID [--off]     accept an invitation (--off: decline it)
  join-requests GROUP_ID            owner, admins: who waits for approval (confirmation mode)
  approve GROUP_ID HANDLE [--off]   owner, admins: approve a request (--off: reject it)

Output is one human-readable line per item. An error reply prints
"error: <STATUS>: <message>" on stderr and exits 1; usage errors exit 2.
Environment: CHAT_CODES_FILE overrides the env file's; CHAT_CLI_CONFIG_DIR moves profiles.
)";

// Options that take a value; everything else starting with "--" must be a flag.
const std::set<std::string>& ValueOptions() {
  static const std::set<std::string> k = {"url",   "env",     "profile",  "code",   "phone",    "name",   "greeting",
                                          "limit", "timeout", "new-code", "avatar", "whats-up", "source", "id"};
  return k;
}
const std::set<std::string>& FlagOptions() {
  static const std::set<std::string> k = {"json", "help", "sent", "rotate", "add", "off"};
  return k;
}

std::string Trim(std::string s) {
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && space(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

bool ParseUint(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  try {
    *out = std::stoull(s);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// Thrown inside a command to print "error: ..." and exit 1; never escapes Main.
struct CommandError {
  std::string message;
};
struct UsageError {
  std::string message;
};

const v1::Reply& Check(const v1::Reply& reply) {
  if (reply.status() != v1::OK) throw CommandError{client::DescribeError(reply)};
  return reply;
}

// Every string that came from the server or another user (names, handles, texts, greetings, group
// names, aliases, media labels, conversation ids, error messages, close and kick reasons) goes
// through this before it reaches the terminal.
std::string Safe(std::string_view s) { return EscapeForTerminal(s); }

}  // namespace

std::string QrTerminalArt(const std::string& text) {
  std::unique_ptr<QRcode, decltype(&QRcode_free)> qr(QRcode_encodeString8bit(text.c_str(), 0, QR_ECLEVEL_M),
                                                     &QRcode_free);
  if (!qr) return "";
  constexpr int kQuiet = 4;
  const int w = qr->width, size = w + 2 * kQuiet;
  // Light (true) outside the symbol and where the module's bit 0 is clear.
  auto light = [&](int x, int y) {
    x -= kQuiet;
    y -= kQuiet;
    if (x < 0 || y < 0 || x >= w || y >= w) return true;
    return (qr->data[y * w + x] & 1) == 0;
  };
  std::string out;
  for (int y = 0; y < size; y += 2) {
    for (int x = 0; x < size; ++x) {
      const bool top = light(x, y), bottom = y + 1 < size ? light(x, y + 1) : false;
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += '\n';
  }
  return out;
}

std::string Who(const v1::UserProfile& p) {
  std::string s = "@" + Safe(p.handle());
  // Your remark name for them, when you gave one, as a WeChat client shows it.
  const std::string& name = p.remark().empty() ? p.display_name() : p.remark();
  if (!name.empty()) s += " (" + Safe(name) + ")";
  return s;
}

namespace {

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace

std::string DescribeContent(const v1::MessageContent& c) {
  switch (c.content_case()) {
    case v1::MessageContent::kText:
      return Safe(c.text().text());
    case v1::MessageContent::kMedia: {
      static const char* kKinds[] = {"media", "image", "voice", "video", "file"};
      int k = c.media().kind();
      std::string s = std::string("[") + (k >= 0 && k <= 4 ? kKinds[k] : "media") + " " + Safe(c.media().url());
      if (!c.media().file_name().empty()) s += " " + Safe(c.media().file_name());
      return s + "]";
    }
    case v1::MessageContent::kLocation: {
      std::ostringstream o;
      o << "[location " << c.location().latitude() << "," << c.location().longitude();
      if (!c.location().label().empty()) o << " " << Safe(c.location().label());
      o << "]";
      return o.str();
    }
    case v1::MessageContent::kContactCard:
      return "[contact card: user " + std::to_string(c.contact_card().user_id()) + "]";
    case v1::MessageContent::kSystem:
      return "* " + Safe(c.system().text());
    default:
      return "[unsupported message]";
  }
}

namespace {

const char* RoleName(v1::GroupRole r) {
  switch (r) {
    case v1::GROUP_ROLE_OWNER:
      return "owner";
    case v1::GROUP_ROLE_ADMIN:
      return "admin";
    default:
      return "member";
  }
}

const char* SourceName(v1::FriendRequestSource s) {
  switch (s) {
    case v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH:
      return "handle search";
    case v1::FRIEND_REQUEST_SOURCE_CARD:
      return "card";
    case v1::FRIEND_REQUEST_SOURCE_GROUP:
      return "group";
    case v1::FRIEND_REQUEST_SOURCE_NEARBY:
      return "nearby";
    case v1::FRIEND_REQUEST_SOURCE_SHAKE:
      return "shake";
    case v1::FRIEND_REQUEST_SOURCE_PHONE_SEARCH:
      return "phone search";
    case v1::FRIEND_REQUEST_SOURCE_QR_CODE:
      return "QR code";
    default:
      return "unknown";
  }
}

const char* GroupChangeName(v1::GroupChangeKind k) {
  switch (k) {
    case v1::GROUP_CHANGE_KIND_CREATED:
      return "created";
    case v1::GROUP_CHANGE_KIND_MEMBERS_ADDED:
      return "members added";
    case v1::GROUP_CHANGE_KIND_MEMBER_LEFT:
      return "member left";
    case v1::GROUP_CHANGE_KIND_MEMBER_REMOVED:
      return "member removed";
    case v1::GROUP_CHANGE_KIND_RENAMED:
      return "renamed";
    case v1::GROUP_CHANGE_KIND_ADMIN_ADDED:
      return "admin appointed";
    case v1::GROUP_CHANGE_KIND_ADMIN_REMOVED:
      return "admin removed";
    case v1::GROUP_CHANGE_KIND_OWNER_TRANSFERRED:
      return "owner changed";
    case v1::GROUP_CHANGE_KIND_MEMBER_MUTED:
      return "member muted";
    case v1::GROUP_CHANGE_KIND_MEMBER_UNMUTED:
      return "member unmuted";
    case v1::GROUP_CHANGE_KIND_SETTINGS_CHANGED:
      return "settings changed";
    case v1::GROUP_CHANGE_KIND_DISSOLVED:
      return "dissolved";
    case v1::GROUP_CHANGE_KIND_MEMBER_JOINED:
      return "member joined";
    default:
      return "changed";
  }
}

// True if a termination signal (blocked by main) is pending or arrives within `wait`; doubles as
// an interruptible sleep.
bool Interrupted(milliseconds wait) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return true;
    if (errno == EINTR) continue;  // a different signal; the remaining time is not tracked
    return false;
  }
}

// One invocation: global settings, the connection, and a cache of user names.
class Cli {
 public:
  Cli(Args args) : args_(std::move(args)) {}

  int Run() {
    if (args_.flags.count("help") || args_.positional.empty()) {
      std::cout << kHelp;
      return args_.flags.count("help") ? 0 : 2;
    }
    command_ = args_.positional.front();
    words_.assign(args_.positional.begin() + 1, args_.positional.end());
    if (command_ != "watch") {
      // Only `watch` collects Ctrl-C itself; everything else dies of it as usual.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    }
    try {
      Command fn = Find(command_);
      Setup();
      return (this->*fn)();
    } catch (const UsageError& e) {
      std::cerr << "error: " << Safe(e.message) << "\n(see chat-cli --help)\n";
      return 2;
    } catch (const CommandError& e) {
      std::cerr << "error: " << Safe(e.message) << "\n";
      return 1;
    }
  }

 private:
  std::string Opt(const std::string& name, const std::string& def = "") const {
    auto it = args_.options.find(name);
    return it == args_.options.end() ? def : it->second;
  }
  std::string Required(const std::string& name) const {
    std::string v = Opt(name);
    if (v.empty()) throw UsageError{command_ + " needs --" + name};
    return v;
  }
  void NeedWords(size_t min, const char* usage) const {
    if (words_.size() < min) throw UsageError{std::string("usage: chat-cli ") + usage};
  }

  void Setup() {
    auto env = ReadEnvFile(Opt("env", kDefaultEnvFile));
    if (!Opt("url").empty()) {
      urls_ = {Opt("url")};
    } else {
      urls_ = SplitList(env["GATEWAY_URLS"]);
    }
    if (const char* c = std::getenv("CHAT_CODES_FILE"); c && *c)
      codes_file_ = c;
    else
      codes_file_ = env["CHAT_CODES_FILE"];
    uint64_t timeout = 5000;
    if (!Opt("timeout").empty() && (!ParseUint(Opt("timeout"), &timeout) || timeout == 0))
      throw UsageError{"--timeout takes milliseconds"};
    timeout_ = milliseconds(timeout);
    profile_path_ = ProfilePath(Opt("profile", kDefaultProfile));
    for (const auto& u : urls_) {
      ConnectOptions o;
      if (!ConnectOptions::ParseUrl(u, &o)) throw UsageError{"not a ws:// URL: " + u};
    }
  }

  ConnectOptions OptionsFor(size_t url_index) const {
    ConnectOptions o;
    ConnectOptions::ParseUrl(urls_[url_index % urls_.size()], &o);
    o.encoding = args_.flags.count("json") ? WireEncoding::kJson : WireEncoding::kProto;
    o.timeout = timeout_;
    return o;
  }

  // Tries every URL once, starting at `first`; returns the connection and sets *used.
  std::unique_ptr<Connection> ConnectAny(const std::string& token, size_t first, size_t* used, std::string* error,
                                         int* http_status) {
    if (urls_.empty()) throw CommandError{"no gateway: pass --url ws://HOST:PORT/ws or --env FILE with GATEWAY_URLS"};
    for (size_t i = 0; i < urls_.size(); ++i) {
      ConnectOptions o = OptionsFor(first + i);
      o.token = token;
      std::string err;
      int status = 0;
      auto conn = Connection::Connect(o, &err, &status);
      if (conn) {
        if (used) *used = (first + i) % urls_.size();
        return conn;
      }
      *error = err;
      *http_status = status;
      if (status == 401 || status == 400) return nullptr;  // another gateway says the same
    }
    return nullptr;
  }

  Profile& LoggedIn() {
    if (!profile_) {
      std::string err;
      profile_ = LoadProfile(profile_path_, &err);
      if (!profile_ || profile_->token.empty())
        throw CommandError{"not logged in (no token in " + profile_path_ + "): run chat-cli signup or login first"};
    }
    return *profile_;
  }

  Connection& Conn() {
    if (!conn_) {
      std::string err;
      int status = 0;
      conn_ = ConnectAny(LoggedIn().token, 0, nullptr, &err, &status);
      if (!conn_) {
        if (status == 401) throw CommandError{"UNAUTHENTICATED: the saved token was rejected; run chat-cli login"};
        throw CommandError{"UNAVAILABLE: " + err};
      }
    }
    return *conn_;
  }

  uint64_t MyId() {
    if (LoggedIn().user_id == 0) {
      auto r = Check(client::GetMe(Conn(), timeout_));
      profile_->user_id = r.account().profile().user_id();
    }
    return profile_->user_id;
  }

  v1::UserProfile Lookup(std::string handle) {
    if (!handle.empty() && handle[0] == '@') handle.erase(0, 1);
    auto r = Check(client::LookupUser(Conn(), handle, timeout_));
    names_[r.profile().user_id()] = Who(r.profile());
    return r.profile();
  }

  uint64_t UserIdOf(const std::string& word) {
    uint64_t id;
    if (ParseUint(word, &id)) return id;
    return Lookup(word).user_id();
  }

  std::string ConversationOf(const std::string& word) {
    if (ParseConversationId(word)) return word;
    if (word.size() > 2 && (word[0] == 'd' || word[0] == 'g') && word[1] == '.')
      throw UsageError{"not a valid conversation id: " + word};
    return DirectConversationId(MyId(), Lookup(word).user_id());
  }

  uint64_t GroupIdOf(const std::string& word) {
    uint64_t id;
    if (ParseUint(word, &id)) return id;
    auto parsed = ParseConversationId(word);
    if (parsed && parsed->kind == ParsedConversation::kGroup) return parsed->a;
    throw UsageError{"not a group id: " + word};
  }

  // Display names for user ids, fetched in one get_profiles call for the unknown ones.
  void LearnNames(std::vector<uint64_t> ids) {
    std::vector<uint64_t> unknown;
    for (uint64_t id : ids)
      if (id != 0 && !names_.count(id)) unknown.push_back(id);
    std::sort(unknown.begin(), unknown.end());
    unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
    if (unknown.empty()) return;
    auto r = client::GetProfiles(Conn(), unknown, timeout_);
    if (r.status() != v1::OK) return;  // names are cosmetic; fall back to ids
    for (const auto& p : r.profiles().profiles()) names_[p.user_id()] = Who(p);
  }
  std::string NameOf(uint64_t id) {
    if (profile_ && id == profile_->user_id) return "me";
    auto it = names_.find(id);
    return it != names_.end() ? it->second : "user " + std::to_string(id);
  }
  std::string ShortName(uint64_t id) {
    if (profile_ && id == profile_->user_id) return "me";
    auto it = names_.find(id);
    if (it == names_.end()) return "user " + std::to_string(id);
    // "@h (Name)" -> "Name", else "@h"
    const std::string& s = it->second;
    size_t open = s.find(" (");
    return open == std::string::npos ? s : s.substr(open + 2, s.size() - open - 3);
  }

  std::string FormatMessage(const v1::Message& m) {
    return "[" + Safe(m.conversation_id()) + " #" + std::to_string(m.seq()) + "] " +
           (m.content().has_system() ? "" : ShortName(m.sender_id()) + ": ") + DescribeContent(m.content());
  }

  void PrintMessages(const google::protobuf::RepeatedPtrField<v1::Message>& msgs) {
    std::vector<uint64_t> ids;
    for (const auto& m : msgs) ids.push_back(m.sender_id());
    LearnNames(ids);
    for (const auto& m : msgs) std::cout << FormatMessage(m) << std::endl;
  }

  void SaveSession(const v1::SessionResult& s, const std::string& device_id) {
    Profile p;
    p.token = s.token();
    p.token_expires_ms = s.token_expires_ms();
    p.user_id = s.account().profile().user_id();
    p.handle = s.account().profile().handle();
    p.display_name = s.account().profile().display_name();
    p.device_id = device_id;
    std::string err;
    if (!SaveProfile(profile_path_, p, &err)) throw CommandError{err};
    profile_ = p;
  }

  // --- commands -------------------------------------------------------------------------------

  using Command = int (Cli::*)();
  static Command Find(const std::string& name) {
    static const std::map<std::string, Command> kCommands = {
        {"request-code", &Cli::CmdRequestCode},
        {"signup", &Cli::CmdSignUp},
        {"login", &Cli::CmdLogIn},
        {"whoami", &Cli::CmdWhoAmI},
        {"set-handle", &Cli::CmdSetHandle},
        {"devices", &Cli::CmdDevices},
        {"logout", &Cli::CmdLogOut},
        {"change-phone", &Cli::CmdChangePhone},
        {"delete-account", &Cli::CmdDeleteAccount},
        {"lookup", &Cli::CmdLookup},
        {"find-phone", &Cli::CmdFindPhone},
        {"qr", &Cli::CmdQr},
        {"scan", &Cli::CmdScan},
        {"send-card", &Cli::CmdSendCard},
        {"set-profile", &Cli::CmdSetProfile},
        {"privacy", &Cli::CmdPrivacy},
        {"add-friend", &Cli::CmdAddFriend},
        {"requests", &Cli::CmdRequests},
        {"accept", &Cli::CmdAccept},
        {"ignore", &Cli::CmdIgnore},
        {"contacts", &Cli::CmdContacts},
        {"remark", &Cli::CmdRemark},
        {"block", &Cli::CmdBlock},
        {"unblock", &Cli::CmdUnblock},
        {"delete-contact", &Cli::CmdDeleteContact},
        {"labels", &Cli::CmdLabels},
        {"label", &Cli::CmdLabel},
        {"delete-label", &Cli::CmdDeleteLabel},
        {"send", &Cli::CmdSend},
        {"history", &Cli::CmdHistory},
        {"conversations", &Cli::CmdConversations},
        {"read", &Cli::CmdRead},
        {"create-group", &Cli::CmdCreateGroup},
        {"group-add", &Cli::CmdGroupAdd},
        {"groups", &Cli::CmdGroups},
        {"members", &Cli::CmdMembers},
        {"leave", &Cli::CmdLeave},
        {"group-code", &Cli::CmdGroupCode},
        {"group-preview", &Cli::CmdGroupPreview},
        {"join-group", &Cli::CmdJoinGroup},
        {"rename-group", &Cli::CmdRenameGroup},
        {"kick", &Cli::CmdKick},
        {"mute", &Cli::CmdMute},
        {"mute-all", &Cli::CmdMuteAll},
        {"group-admin", &Cli::CmdGroupAdmin},
        {"group-owner", &Cli::CmdGroupOwner},
        {"group-confirm", &Cli::CmdGroupConfirm},
        {"dissolve", &Cli::CmdDissolve},
        {"invitations", &Cli::CmdInvitations},
        {"accept-group", &Cli::CmdAcceptGroup},
        {"join-requests", &Cli::CmdJoinRequests},
        {"approve", &Cli::CmdApprove},
        {"watch", &Cli::CmdWatch},
    };
    auto it = kCommands.find(name);
    if (it == kCommands.end()) throw UsageError{"unknown command: " + name};
    return it->second;
  }

  std::unique_ptr<Connection> AnonymousConnection() {
    std::string err;
    int status = 0;
    auto conn = ConnectAny("", 0, nullptr, &err, &status);
    if (!conn) throw CommandError{"UNAVAILABLE: " + err};
    return conn;
  }

  int CmdRequestCode() {
    std::string phone = Required("phone");
    auto conn = AnonymousConnection();
    auto r = Check(client::RequestCode(*conn, phone, timeout_));
    std::cout << "code sent; it expires in " << r.request_code().expires_in_s() << " s" << std::endl;
    return 0;
  }

  // The code: --code (or the option `option`), else request one and take it from the codes file,
  // else ask on stdin.
  std::string ObtainCode(Connection& conn, const std::string& phone, const char* option = "code") {
    if (!Opt(option).empty()) return Opt(option);
    int64_t before = client::UnixMillis();
    Check(client::RequestCode(conn, phone, timeout_));
    if (!codes_file_.empty()) {
      std::string code = client::WaitForCode(codes_file_, phone, before, timeout_);
      if (code.empty()) throw CommandError{"no code for this phone appeared in " + codes_file_ + " (pass --code CODE)"};
      return code;
    }
    std::cerr << "code sent; enter it: " << std::flush;
    std::string code;
    if (!std::getline(std::cin, code) || Trim(code).empty()) throw CommandError{"no code entered"};
    return Trim(code);
  }

  std::string DeviceIdForProfile() {
    std::string err;
    auto existing = LoadProfile(profile_path_, &err);
    if (existing && !existing->device_id.empty()) return existing->device_id;
    return client::NewDeviceId();
  }

  int CmdSignUp() {
    std::string phone = Required("phone"), name = Required("name");
    auto conn = AnonymousConnection();
    std::string code = ObtainCode(*conn, phone);
    std::string device = DeviceIdForProfile();
    auto r = Check(client::SignUp(*conn, phone, code, name, device, timeout_));
    SaveSession(r.session(), device);
    std::cout << "signed up as " << Who(r.session().account().profile()) << ", id "
              << r.session().account().profile().user_id() << std::endl;
    return 0;
  }

  int CmdLogIn() {
    std::string phone = Required("phone");
    auto conn = AnonymousConnection();
    std::string code = ObtainCode(*conn, phone);
    std::string device = DeviceIdForProfile();
    auto r = Check(client::LogIn(*conn, phone, code, device, timeout_));
    SaveSession(r.session(), device);
    std::cout << "logged in as " << Who(r.session().account().profile()) << ", id "
              << r.session().account().profile().user_id() << std::endl;
    return 0;
  }

  int CmdWhoAmI() {
    auto r = Check(client::GetMe(Conn(), timeout_));
    const auto& a = r.account();
    std::cout << Who(a.profile()) << ", id " << a.profile().user_id() << ", phone " << Safe(a.phone())
              << (a.allow_phone_lookup() ? " (others may find you by it)" : " (private)");
    if (!a.profile().whats_up().empty()) std::cout << ", what's up: " << Safe(a.profile().whats_up());
    if (!a.profile().avatar_media_id().empty()) std::cout << ", avatar " << Safe(a.profile().avatar_media_id());
    std::cout << std::endl;
    return 0;
  }

  int CmdSetProfile() {
    auto r = Check(client::SetProfile(Conn(), Required("name"), Opt("avatar"), Opt("whats-up"), timeout_));
    std::cout << "your profile: " << Who(r.account().profile());
    if (!r.account().profile().whats_up().empty())
      std::cout << ", what's up: " << Safe(r.account().profile().whats_up());
    std::cout << std::endl;
    return 0;
  }

  int CmdPrivacy() {
    if (words_.size() != 2 || words_[0] != "phone-lookup" || (words_[1] != "on" && words_[1] != "off"))
      throw UsageError{"usage: chat-cli privacy phone-lookup on|off"};
    auto r = Check(client::SetPrivacy(Conn(), words_[1] == "on", timeout_));
    std::cout << (r.account().allow_phone_lookup() ? "others may now find you by your phone number"
                                                   : "nobody can find you by your phone number")
              << std::endl;
    return 0;
  }

  int CmdQr() {
    const bool rotate = args_.flags.count("rotate") > 0;
    auto r = Check(client::MyQrCode(Conn(), rotate, timeout_));
    const std::string& token = r.qr_code().token();
    std::cout << QrTerminalArt(token) << "your QR code" << (rotate ? " (new; the old one no longer works)" : "") << ": "
              << Safe(token) << std::endl;
    return 0;
  }

  int CmdScan() {
    NeedWords(1, "scan TOKEN [--add [--greeting G]]");
    auto r = Check(client::ResolveQrCode(Conn(), words_[0], timeout_));
    std::cout << Who(r.profile()) << ", id " << r.profile().user_id() << std::endl;
    if (!args_.flags.count("add")) return 0;
    auto sent = Check(client::SendFriendRequest(Conn(), r.profile().user_id(), Opt("greeting"),
                                                v1::FRIEND_REQUEST_SOURCE_QR_CODE, timeout_));
    std::cout << (sent.send_friend_request().already_friends() ? "already friends" : "friend request sent")
              << std::endl;
    return 0;
  }

  // A contact card: CONTACT's id sent to TO (a contact or conversation), who may then add them with
  // `add-friend USER_ID --source card`.
  int CmdSendCard() {
    NeedWords(2, "send-card HANDLE|CONVERSATION_ID CONTACT_HANDLE|USER_ID");
    const std::string cid = ConversationOf(words_[0]);
    v1::MessageContent content;
    content.mutable_contact_card()->set_user_id(UserIdOf(words_[1]));
    auto r = Check(client::SendContent(Conn(), cid, client::NewClientMsgId(), content, timeout_));
    std::cout << "card sent [" << Safe(cid) << " #" << r.send_message().seq() << "]" << std::endl;
    return 0;
  }

  int CmdFindPhone() {
    NeedWords(1, "find-phone PHONE");
    auto r = Check(client::LookupPhone(Conn(), words_[0], timeout_));
    std::cout << Who(r.profile()) << ", id " << r.profile().user_id() << std::endl;
    return 0;
  }

  int CmdSetHandle() {
    NeedWords(1, "set-handle HANDLE");
    auto r = Check(client::SetHandle(Conn(), words_[0], timeout_));
    std::cout << "your handle is now @" << Safe(r.account().profile().handle()) << std::endl;
    return 0;
  }

  int CmdDevices() {
    auto r = Check(client::ListDevices(Conn(), timeout_));
    for (const auto& d : r.devices().devices()) {
      std::cout << (d.current() ? "* " : "  ") << d.session_id() << "  " << Safe(d.device_id());
      if (!d.device_name().empty()) std::cout << " \"" << Safe(d.device_name()) << "\"";
      if (!d.platform().empty()) std::cout << " (" << Safe(d.platform()) << ")";
      std::cout << ", signed in " << FormatTime(d.created_ms()) << ", last active " << FormatTime(d.last_active_ms())
                << std::endl;
    }
    return 0;
  }

  int CmdLogOut() {
    if (words_.size() > 1) throw UsageError{"usage: logout [SESSION_ID|all]"};
    const std::string what = words_.empty() ? "" : words_[0];
    uint64_t session = 0;
    if (!what.empty() && what != "all") {
      try {
        session = std::stoull(what);
      } catch (const std::exception&) {
        throw UsageError{"logout takes a session id from `devices`, or `all`"};
      }
    }
    Check(client::LogOut(Conn(), session, what == "all", timeout_));
    std::cout << (what == "all" ? "logged out every device"
                  : session     ? "logged out that device"
                                : "logged out")
              << std::endl;
    return 0;
  }

  int CmdChangePhone() {
    const std::string new_phone = Required("phone");
    auto me = Check(client::GetMe(Conn(), timeout_));
    const std::string code = ObtainCode(Conn(), me.account().phone());
    const std::string new_code = ObtainCode(Conn(), new_phone, "new-code");
    auto r = Check(client::ChangePhone(Conn(), new_phone, code, new_code, timeout_));
    std::cout << "your number is now " << Safe(r.account().phone()) << std::endl;
    return 0;
  }

  int CmdDeleteAccount() {
    auto me = Check(client::GetMe(Conn(), timeout_));
    const std::string code = ObtainCode(Conn(), me.account().phone());
    Check(client::DeleteAccount(Conn(), code, timeout_));
    std::cout << "account deleted" << std::endl;
    return 0;
  }

  int CmdLookup() {
    NeedWords(1, "lookup HANDLE");
    auto p = Lookup(words_[0]);
    std::cout << Who(p) << ", id " << p.user_id() << std::endl;
    return 0;
  }

  // --source: how you found them (handle, phone, card, qr, group, nearby, shake).
  v1::FriendRequestSource SourceOpt(v1::FriendRequestSource def) const {
    static const std::map<std::string, v1::FriendRequestSource> kSources = {
        {"handle", v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH},
        {"phone", v1::FRIEND_REQUEST_SOURCE_PHONE_SEARCH},
        {"card", v1::FRIEND_REQUEST_SOURCE_CARD},
        {"qr", v1::FRIEND_REQUEST_SOURCE_QR_CODE},
        {"group", v1::FRIEND_REQUEST_SOURCE_GROUP},
        {"nearby", v1::FRIEND_REQUEST_SOURCE_NEARBY},
        {"shake", v1::FRIEND_REQUEST_SOURCE_SHAKE}};
    const std::string s = Opt("source");
    if (s.empty()) return def;
    auto it = kSources.find(s);
    if (it == kSources.end()) throw UsageError{"--source is one of handle, phone, card, qr, group, nearby, shake"};
    return it->second;
  }

  int CmdAddFriend() {
    NeedWords(1, "add-friend HANDLE|USER_ID [--greeting G] [--source S]");
    v1::UserProfile p;
    uint64_t id = 0;
    if (ParseUint(words_[0], &id))
      p.set_user_id(id);
    else
      p = Lookup(words_[0]);
    auto r = Check(client::SendFriendRequest(Conn(), p.user_id(), Opt("greeting"),
                                             SourceOpt(v1::FRIEND_REQUEST_SOURCE_HANDLE_SEARCH), timeout_));
    if (r.send_friend_request().already_friends())
      std::cout << "already friends with " << Who(p) << std::endl;
    else
      std::cout << "friend request sent to " << Who(p) << std::endl;
    return 0;
  }

  int CmdRequests() {
    const bool sent = args_.flags.count("sent") > 0;
    auto r = Check(client::ListFriendRequests(Conn(), sent, timeout_));
    if (r.friend_requests().requests().empty()) std::cout << "no pending friend requests\n";
    for (const auto& q : r.friend_requests().requests()) {
      const v1::UserProfile& other = sent ? q.to() : q.from();
      std::cout << (sent ? "to " : "") << Who(other) << ", id " << other.user_id() << ", via " << SourceName(q.source())
                << ", " << FormatTime(q.created_ms());
      if (!q.greeting().empty()) std::cout << ": \"" << Safe(q.greeting()) << "\"";
      std::cout << std::endl;
    }
    return 0;
  }

  int CmdIgnore() {
    NeedWords(1, "ignore HANDLE|USER_ID");
    Check(client::IgnoreFriendRequest(Conn(), UserIdOf(words_[0]), timeout_));
    std::cout << "ignored the request from " << Safe(words_[0]) << " (they are not told)" << std::endl;
    return 0;
  }

  int CmdAccept() {
    NeedWords(1, "accept HANDLE|USER_ID");
    uint64_t id = UserIdOf(words_[0]);
    auto r = Check(client::AcceptFriendRequest(Conn(), id, timeout_));
    if (r.has_contact()) {
      std::cout << "now friends with " << Who(r.contact().profile()) << "; conversation "
                << Safe(r.contact().conversation_id()) << std::endl;
    } else {
      std::cout << "accepted" << std::endl;
    }
    return 0;
  }

  int CmdContacts() {
    auto r = Check(client::ListContacts(Conn(), timeout_));
    if (r.contacts().contacts().empty()) std::cout << "no contacts yet\n";
    for (const auto& c : r.contacts().contacts()) {
      std::cout << Who(c.profile()) << ", id " << c.profile().user_id() << ", conversation "
                << Safe(c.conversation_id()) << ", since " << FormatTime(c.since_ms());
      if (!c.profile().remark().empty()) std::cout << ", name " << Safe(c.profile().display_name());
      if (c.blocked()) std::cout << ", blocked";
      std::cout << std::endl;
    }
    for (const auto& p : r.contacts().blocked())
      std::cout << "blocked: " << Who(p) << ", id " << p.user_id() << std::endl;
    return 0;
  }

  int CmdRemark() {
    NeedWords(1, "remark HANDLE|USER_ID [NAME...]");
    const uint64_t id = UserIdOf(words_[0]);
    std::string name;
    for (size_t i = 1; i < words_.size(); ++i) name += (i > 1 ? " " : "") + words_[i];
    auto r = Check(client::SetRemark(Conn(), id, name, timeout_));
    std::cout << (name.empty() ? "remark cleared: " : "remark set: ") << Who(r.contact().profile()) << std::endl;
    return 0;
  }

  int SetBlocked(bool blocked) {
    NeedWords(1, blocked ? "block HANDLE|USER_ID" : "unblock HANDLE|USER_ID");
    Check(client::BlockUser(Conn(), UserIdOf(words_[0]), blocked, timeout_));
    std::cout << (blocked ? "blocked " : "unblocked ") << Safe(words_[0]) << std::endl;
    return 0;
  }
  int CmdBlock() { return SetBlocked(true); }
  int CmdUnblock() { return SetBlocked(false); }

  int CmdLabels() {
    auto r = Check(client::ListLabels(Conn(), timeout_));
    if (r.labels().labels().empty()) std::cout << "no labels yet\n";
    std::vector<uint64_t> ids;
    for (const auto& l : r.labels().labels()) ids.insert(ids.end(), l.member_ids().begin(), l.member_ids().end());
    LearnNames(ids);
    for (const auto& l : r.labels().labels()) {
      std::cout << l.label_id() << "  \"" << Safe(l.name()) << "\":";
      for (uint64_t id : l.member_ids()) std::cout << " " << ShortName(id);
      std::cout << std::endl;
    }
    return 0;
  }

  // label NAME CONTACT...: a new label; with --id ID it replaces that label's name and members.
  int CmdLabel() {
    NeedWords(1, "label NAME [CONTACT...] [--id LABEL_ID]");
    uint64_t id = 0;
    if (!Opt("id").empty() && !ParseUint(Opt("id"), &id)) throw UsageError{"--id takes a label id from `labels`"};
    std::vector<uint64_t> members;
    for (size_t i = 1; i < words_.size(); ++i) members.push_back(UserIdOf(words_[i]));
    auto r = Check(client::SetLabel(Conn(), id, words_[0], members, timeout_));
    std::cout << "label " << r.label().label_id() << " \"" << Safe(r.label().name()) << "\" holds "
              << r.label().member_ids_size() << " contact(s)" << std::endl;
    return 0;
  }

  int CmdDeleteLabel() {
    NeedWords(1, "delete-label LABEL_ID");
    uint64_t id = 0;
    if (!ParseUint(words_[0], &id)) throw UsageError{"delete-label takes a label id from `labels`"};
    Check(client::DeleteLabel(Conn(), id, timeout_));
    std::cout << "label " << id << " deleted" << std::endl;
    return 0;
  }

  int CmdDeleteContact() {
    NeedWords(1, "delete-contact HANDLE|USER_ID");
    Check(client::DeleteContact(Conn(), UserIdOf(words_[0]), timeout_));
    std::cout << "deleted " << Safe(words_[0]) << " from your contacts" << std::endl;
    return 0;
  }

  int CmdSend() {
    NeedWords(2, "send HANDLE|CONVERSATION_ID TEXT...");
    std::string cid = ConversationOf(words_[0]);
    std::string text;
    for (size_t i = 1; i < words_.size(); ++i) text += (i > 1 ? " " : "") + words_[i];
    auto r = Check(client::SendText(Conn(), cid, client::NewClientMsgId(), text, timeout_));
    std::cout << "sent [" << Safe(cid) << " #" << r.send_message().seq() << "]"
              << (r.send_message().duplicate() ? " (duplicate)" : "") << std::endl;
    return 0;
  }

  int CmdHistory() {
    NeedWords(1, "history HANDLE|CONVERSATION_ID [--limit N]");
    uint64_t limit = kDefaultHistoryLimit;
    if (!Opt("limit").empty() && (!ParseUint(Opt("limit"), &limit) || limit == 0 || limit > 100000))
      throw UsageError{"--limit takes a positive number"};
    std::string cid = ConversationOf(words_[0]);
    MyId();
    auto r = Check(client::GetHistoryBefore(Conn(), cid, 0, static_cast<uint32_t>(limit), timeout_));
    if (r.history().messages().empty()) std::cout << "no messages\n";
    PrintMessages(r.history().messages());
    return 0;
  }

  int CmdConversations() {
    MyId();
    auto r = Check(client::ListConversations(Conn(), timeout_));
    std::unordered_map<uint64_t, std::string> group_names;
    auto g = client::ListMyGroups(Conn(), timeout_);
    if (g.status() == v1::OK)
      for (const auto& grp : g.groups().groups()) group_names[grp.group_id()] = Safe(grp.name());
    std::vector<uint64_t> ids;
    for (const auto& c : r.conversations().conversations()) {
      ids.push_back(c.peer_user_id());
      ids.push_back(c.last_message().sender_id());
    }
    LearnNames(ids);
    if (r.conversations().conversations().empty()) std::cout << "no conversations\n";
    for (const auto& c : r.conversations().conversations()) {
      std::string title = c.kind() == v1::CONVERSATION_KIND_GROUP ? "group \"" + group_names[c.group_id()] + "\""
                                                                  : "with " + NameOf(c.peer_user_id());
      std::cout << Safe(c.conversation_id()) << "  " << title << "  unread " << c.unread_count() << "  read #"
                << c.read_seq() << " of #" << c.last_seq();
      if (c.has_last_message() && c.last_seq() > 0)
        std::cout << "  last: " << ShortName(c.last_message().sender_id()) << ": "
                  << DescribeContent(c.last_message().content());
      std::cout << std::endl;
    }
    return 0;
  }

  int CmdRead() {
    NeedWords(2, "read CONVERSATION_ID SEQ");
    uint64_t seq;
    if (!ParseUint(words_[1], &seq)) throw UsageError{"SEQ must be a number"};
    std::string cid = ConversationOf(words_[0]);
    auto r = Check(client::MarkRead(Conn(), cid, seq, timeout_));
    std::cout << "read position of " << Safe(cid) << " is #" << r.mark_read().read_seq() << std::endl;
    return 0;
  }

  void PrintGroup(const v1::Group& g) {
    std::cout << g.group_id() << "  \"" << Safe(g.name()) << "\"  " << g.member_count() << " members  conversation "
              << Safe(g.conversation_id()) << std::endl;
  }

  int CmdCreateGroup() {
    NeedWords(1, "create-group NAME HANDLE...");
    std::vector<uint64_t> ids;
    for (size_t i = 1; i < words_.size(); ++i) ids.push_back(UserIdOf(words_[i]));
    auto r = Check(client::CreateGroup(Conn(), words_[0], ids, timeout_));
    std::cout << "created group ";
    PrintGroup(r.group().group());
    return 0;
  }

  int CmdGroupAdd() {
    NeedWords(2, "group-add GROUP_ID HANDLE...");
    uint64_t gid = GroupIdOf(words_[0]);
    std::vector<uint64_t> ids;
    for (size_t i = 1; i < words_.size(); ++i) ids.push_back(UserIdOf(words_[i]));
    auto r = Check(client::AddGroupMembers(Conn(), gid, ids, timeout_));
    std::cout << "added " << ids.size() << " member(s); group ";
    if (r.has_group())
      PrintGroup(r.group().group());
    else if (r.has_group_members())
      PrintGroup(r.group_members().group());
    else
      std::cout << gid << std::endl;
    return 0;
  }

  int CmdGroups() {
    auto r = Check(client::ListMyGroups(Conn(), timeout_));
    if (r.groups().groups().empty()) std::cout << "no groups\n";
    for (const auto& g : r.groups().groups()) PrintGroup(g);
    return 0;
  }

  int CmdMembers() {
    NeedWords(1, "members GROUP_ID");
    auto r = Check(client::ListGroupMembers(Conn(), GroupIdOf(words_[0]), timeout_));
    PrintGroup(r.group_members().group());
    for (const auto& m : r.group_members().members()) {
      std::cout << "  " << Who(m.profile()) << ", id " << m.profile().user_id() << ", " << RoleName(m.role());
      if (!m.alias().empty()) std::cout << ", alias \"" << Safe(m.alias()) << "\"";
      if (m.muted()) std::cout << ", muted";
      std::cout << std::endl;
    }
    return 0;
  }

  int CmdLeave() {
    NeedWords(1, "leave GROUP_ID");
    uint64_t gid = GroupIdOf(words_[0]);
    Check(client::LeaveGroup(Conn(), gid, timeout_));
    std::cout << "left group " << gid << std::endl;
    return 0;
  }

  // One manage_group action on words_[0]'s group; prints the group after it.
  int ManageAction(const std::function<void(v1::ManageGroupRequest&)>& fill, const std::string& done) {
    v1::ManageGroupRequest req = client::GroupAction(GroupIdOf(words_[0]));
    fill(req);
    auto r = Check(client::ManageGroup(Conn(), req, timeout_));
    std::cout << done << "; group ";
    PrintGroup(r.group().group());
    return 0;
  }
  bool Off() const { return args_.flags.count("off") > 0; }

  int CmdRenameGroup() {
    NeedWords(1, "rename-group GROUP_ID [NAME...]");
    std::string name;
    for (size_t i = 1; i < words_.size(); ++i) name += (i > 1 ? " " : "") + words_[i];
    return ManageAction([&](auto& r) { r.set_rename(name); }, "renamed");
  }
  int CmdKick() {
    NeedWords(2, "kick GROUP_ID HANDLE...");
    std::vector<uint64_t> ids;
    for (size_t i = 1; i < words_.size(); ++i) ids.push_back(UserIdOf(words_[i]));
    return ManageAction(
        [&](auto& r) {
          for (uint64_t id : ids) r.mutable_remove_members()->add_user_ids(id);
        },
        "removed " + std::to_string(ids.size()) + " member(s)");
  }
  int CmdMute() {
    NeedWords(2, "mute GROUP_ID HANDLE [--off]");
    const uint64_t id = UserIdOf(words_[1]);
    return ManageAction(
        [&](auto& r) {
          r.mutable_mute_member()->set_user_id(id);
          r.mutable_mute_member()->set_on(!Off());
        },
        Off() ? "unmuted" : "muted");
  }
  int CmdMuteAll() {
    NeedWords(1, "mute-all GROUP_ID [--off]");
    return ManageAction([&](auto& r) { r.set_mute_all(!Off()); }, Off() ? "group unmuted" : "group muted");
  }
  int CmdGroupAdmin() {
    NeedWords(2, "group-admin GROUP_ID HANDLE [--off]");
    const uint64_t id = UserIdOf(words_[1]);
    return ManageAction(
        [&](auto& r) {
          r.mutable_set_admin()->set_user_id(id);
          r.mutable_set_admin()->set_on(!Off());
        },
        Off() ? "admin removed" : "admin appointed");
  }
  int CmdGroupOwner() {
    NeedWords(2, "group-owner GROUP_ID HANDLE");
    const uint64_t id = UserIdOf(words_[1]);
    return ManageAction([&](auto& r) { r.set_transfer_owner_to(id); }, "ownership transferred");
  }
  int CmdGroupConfirm() {
    NeedWords(1, "group-confirm GROUP_ID [--off]");
    return ManageAction([&](auto& r) { r.set_invite_confirmation(!Off()); },
                        Off() ? "invitation confirmation off" : "invitation confirmation on");
  }
  int CmdDissolve() {
    NeedWords(1, "dissolve GROUP_ID");
    return ManageAction([&](auto& r) { r.set_dissolve(true); }, "dissolved");
  }
  int CmdGroupCode() {
    NeedWords(1, "group-code GROUP_ID");
    auto r = Check(client::MakeGroupInviteCode(Conn(), GroupIdOf(words_[0]), timeout_));
    const std::string& code = r.group_invite_code().code();
    std::cout << QrTerminalArt(code) << "invite code (valid until " << FormatTime(r.group_invite_code().expires_ms())
              << "): " << Safe(code) << std::endl;
    return 0;
  }
  int CmdGroupPreview() {
    NeedWords(1, "group-preview CODE");
    auto r = Check(client::PreviewGroupInviteCode(Conn(), words_[0], timeout_));
    const auto& p = r.group_preview();
    std::cout << "group \"" << Safe(p.name()) << "\", " << p.member_count() << " members:";
    for (const auto& n : p.member_names()) std::cout << " " << Safe(n);
    std::cout << std::endl;
    return 0;
  }
  void PrintInvitations(const v1::GroupInvitationsResult& r) {
    if (r.invitations().empty()) std::cout << "none\n";
    for (const auto& i : r.invitations()) {
      std::cout << i.group_id() << "  \"" << Safe(i.group_name()) << "\"  " << i.member_count() << " members  user "
                << i.user_id() << (i.by_code() ? " by the invite code of " : " invited by ") << i.inviter_id()
                << ", until " << FormatTime(i.expires_ms()) << std::endl;
    }
  }
  int CmdInvitations() {
    PrintInvitations(Check(client::ListGroupInvitations(Conn(), timeout_)).group_invitations());
    return 0;
  }
  int CmdAcceptGroup() {
    NeedWords(1, "accept-group GROUP_ID [--off]");
    auto r = Check(client::RespondGroupInvitation(Conn(), GroupIdOf(words_[0]), !Off(), timeout_));
    if (Off()) {
      std::cout << "declined" << std::endl;
    } else {
      std::cout << "joined group ";
      PrintGroup(r.group().group());
    }
    return 0;
  }
  int CmdJoinRequests() {
    NeedWords(1, "join-requests GROUP_ID");
    PrintInvitations(Check(client::ListGroupJoinRequests(Conn(), GroupIdOf(words_[0]), timeout_)).group_invitations());
    return 0;
  }
  int CmdApprove() {
    NeedWords(2, "approve GROUP_ID HANDLE [--off]");
    auto r = Check(client::ReviewGroupJoinRequest(Conn(), GroupIdOf(words_[0]), UserIdOf(words_[1]), !Off(), timeout_));
    std::cout << (Off()                                   ? "rejected"
                  : r.group().invited_user_ids_size() > 0 ? "approved: invited"
                                                          : "approved: joined")
              << std::endl;
    return 0;
  }
  int CmdJoinGroup() {
    NeedWords(1, "join-group CODE");
    auto r = Check(client::JoinGroupByCode(Conn(), words_[0], timeout_));
    if (r.group().pending_approval_user_ids_size() > 0) {
      std::cout << "asked to join: the group's owner or an admin must approve" << std::endl;
      return 0;
    }
    std::cout << "joined group ";
    PrintGroup(r.group().group());
    return 0;
  }

  // --- watch ----------------------------------------------------------------------------------

  // Prints every message of `cid` after last_seq_[cid] (or from `from_seq` if unknown), paging.
  void CatchUp(const std::string& cid, uint64_t after) {
    for (;;) {
      auto r = Check(client::GetHistory(*conn_, cid, after, kSyncPageSize, timeout_));
      const auto& msgs = r.history().messages();
      google::protobuf::RepeatedPtrField<v1::Message> fresh;
      for (const auto& m : msgs)
        if (m.seq() > last_seq_[cid]) *fresh.Add() = m;
      PrintMessages(fresh);
      for (const auto& m : msgs) {
        after = std::max(after, m.seq());
        last_seq_[cid] = std::max(last_seq_[cid], m.seq());
      }
      if (!r.history().has_more() || msgs.empty()) return;
    }
  }

  // After (re)connecting: on the first connection, remember where every conversation is; later,
  // print what arrived while disconnected.
  void Sync(bool first) {
    auto r = Check(client::ListConversations(*conn_, timeout_));
    for (const auto& c : r.conversations().conversations()) {
      const std::string& cid = c.conversation_id();
      auto it = last_seq_.find(cid);
      if (first) {
        last_seq_[cid] = c.last_seq();
      } else if (it == last_seq_.end()) {
        uint64_t from = c.first_seq() > 0 ? c.first_seq() - 1 : 0;
        last_seq_[cid] = from;
        CatchUp(cid, from);
      } else if (c.last_seq() > it->second) {
        CatchUp(cid, it->second);
      }
    }
  }

  void OnMessage(const v1::Message& m) {
    const std::string& cid = m.conversation_id();
    auto it = last_seq_.find(cid);
    if (it != last_seq_.end()) {
      if (m.seq() <= it->second) return;                       // already printed (at-least-once delivery)
      if (m.seq() > it->second + 1) CatchUp(cid, it->second);  // a gap: fetch it first
      if (m.seq() <= last_seq_[cid]) return;
    }
    LearnNames({m.sender_id()});
    std::cout << FormatMessage(m) << std::endl;
    last_seq_[cid] = m.seq();
  }

  void OnEvent(const v1::Event& e) {
    switch (e.event_case()) {
      case v1::Event::kMessage:
        OnMessage(e.message().message());
        break;
      case v1::Event::kReadPosition:
        std::cout << "[" << Safe(e.read_position().conversation_id()) << "] read up to #"
                  << e.read_position().read_seq() << " on another device" << std::endl;
        break;
      case v1::Event::kFriendRequest: {
        const auto& q = e.friend_request().request();
        std::cout << "friend request from " << Who(q.from()) << ", id " << q.from().user_id();
        if (!q.greeting().empty()) std::cout << ": \"" << Safe(q.greeting()) << "\"";
        std::cout << std::endl;
        break;
      }
      case v1::Event::kFriendAdded: {
        const auto& c = e.friend_added().contact();
        names_[c.profile().user_id()] = Who(c.profile());
        std::cout << "now friends with " << Who(c.profile()) << "; conversation " << Safe(c.conversation_id())
                  << std::endl;
        break;
      }
      case v1::Event::kGroupChanged: {
        const auto& g = e.group_changed();
        std::vector<uint64_t> ids(g.user_ids().begin(), g.user_ids().end());
        ids.push_back(g.actor_id());
        LearnNames(ids);
        std::cout << "[" << Safe(g.group().conversation_id()) << "] group \"" << Safe(g.group().name()) << "\" "
                  << GroupChangeName(g.kind());
        if (g.actor_id() != 0) std::cout << " by " << ShortName(g.actor_id());
        if (!g.user_ids().empty()) {
          std::cout << ":";
          for (uint64_t id : g.user_ids()) std::cout << " " << ShortName(id);
        }
        std::cout << std::endl;
        break;
      }
      case v1::Event::kConversationUpdated:
        break;  // summaries only; messages arrive as their own events
      case v1::Event::kNewDevice: {
        const auto& d = e.new_device().device();
        std::cout << "your account signed in on a new device: " << Safe(d.device_id());
        if (!d.device_name().empty()) std::cout << " \"" << Safe(d.device_name()) << "\"";
        std::cout << " (session " << d.session_id() << "; `logout " << d.session_id() << "` if it was not you)"
                  << std::endl;
        break;
      }
      case v1::Event::kGroupInvitation: {
        const auto& i = e.group_invitation().invitation();
        LearnNames({i.user_id(), i.inviter_id()});
        if (e.group_invitation().needs_approval())
          std::cout << ShortName(i.user_id()) << " waits for approval to join group \"" << Safe(i.group_name())
                    << "\" (`approve " << i.group_id() << " " << i.user_id() << "`)" << std::endl;
        else
          std::cout << ShortName(i.inviter_id()) << " invited you to group \"" << Safe(i.group_name()) << "\", "
                    << i.member_count() << " members (`accept-group " << i.group_id() << "`)" << std::endl;
        break;
      }
      case v1::Event::kProfileChanged: {
        const auto& p = e.profile_changed().profile();
        names_[p.user_id()] = Who(p);
        std::cout << Who(p) << " changed their profile";
        if (!p.whats_up().empty()) std::cout << ": " << Safe(p.whats_up());
        std::cout << std::endl;
        break;
      }
      case v1::Event::kContactUpdated: {
        const auto& u = e.contact_updated();
        const auto& p = u.contact().profile();
        if (u.removed()) {
          std::cout << "contact " << ShortName(p.user_id()) << " deleted on another device" << std::endl;
          names_.erase(p.user_id());
          break;
        }
        names_[p.user_id()] = Who(p);
        std::cout << "contact " << Who(p) << (u.contact().blocked() ? " (blocked)" : "") << " updated on another device"
                  << std::endl;
        break;
      }
      case v1::Event::kKicked:
        std::cerr << "server ends the session: " << Safe(e.kicked().reason()) << " (code " << e.kicked().close_code()
                  << ")" << std::endl;
        break;
      default:
        break;
    }
  }

  int CmdWatch() {
    const std::string token = LoggedIn().token;
    bool first = true;
    size_t url_index = 0;
    milliseconds backoff = kBackoffInitial;
    for (;;) {
      if (Interrupted(milliseconds(0))) return 0;
      std::string err;
      int status = 0;
      size_t used = 0;
      conn_ = ConnectAny(token, url_index, &used, &err, &status);
      if (!conn_) {
        if (status == 401) throw CommandError{"UNAUTHENTICATED: the saved token was rejected; run chat-cli login"};
        std::cerr << "cannot connect: " << Safe(err) << "; retrying in " << backoff.count() << " ms" << std::endl;
        if (Interrupted(backoff)) return 0;
        backoff = std::min(backoff * 2, kBackoffMax);
        continue;
      }
      url_index = used;
      std::cerr << "connected to " << Safe(urls_[used]) << " as @" << Safe(profile_->handle) << std::endl;
      try {
        Sync(first);
        first = false;
        backoff = kBackoffInitial;
        while (conn_->is_open()) {
          if (Interrupted(milliseconds(0))) {
            conn_->Close(1000);
            return 0;
          }
          if (auto e = conn_->NextEvent(kWatchPoll)) OnEvent(*e);
        }
        // Events that arrived before the close are still queued.
        while (auto e = conn_->NextEvent(milliseconds(0))) OnEvent(*e);
      } catch (const CommandError& e) {
        // A sync call failed (e.g. the connection dropped mid-way); reconnect and sync again.
        std::cerr << "sync failed: " << Safe(e.message) << std::endl;
        if (first) backoff = std::min(backoff * 2, kBackoffMax);
      }
      uint16_t code = 0;
      std::string reason;
      conn_->WaitClosed(milliseconds(0), &code, &reason);
      conn_.reset();
      if (code == 4010) throw CommandError{"UNAUTHENTICATED: kicked by the server: " + reason};
      if (code == 4001) throw CommandError{"UNAUTHENTICATED: the server did not accept the token"};
      if (code != 0) {
        std::cerr << "disconnected (code " << code << (reason.empty() ? "" : ": " + Safe(reason)) << "); reconnecting"
                  << std::endl;
      }
      // 1012: the gateway is going away; move on to the next one at once.
      if (code == 1012 || code == 1013) url_index = (url_index + 1) % urls_.size();
      if (Interrupted(code == 1012 ? milliseconds(0) : backoff)) return 0;
      backoff = std::min(backoff * 2, kBackoffMax);
    }
  }

  Args args_;
  std::string command_;
  std::vector<std::string> words_;
  std::vector<std::string> urls_;
  std::string codes_file_;
  std::string profile_path_;
  milliseconds timeout_{5000};
  std::optional<Profile> profile_;
  std::unique_ptr<Connection> conn_;
  std::unordered_map<uint64_t, std::string> names_;     // user id -> "@handle (Name)"
  std::unordered_map<std::string, uint64_t> last_seq_;  // watch: newest seq printed or skipped
};

}  // namespace

// ---- parsing, env file, profiles ---------------------------------------------------------------

bool ParseArgs(const std::vector<std::string>& words, Args* out, std::string* error) {
  bool only_positional = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (only_positional || w.size() < 2 || w[0] != '-') {
      out->positional.push_back(w);
      continue;
    }
    if (w == "--") {
      only_positional = true;
      continue;
    }
    if (w == "-h") {
      out->flags.insert("help");
      continue;
    }
    if (w.rfind("--", 0) != 0) {
      out->positional.push_back(w);  // "-5", "-x": text, not an option
      continue;
    }
    std::string name = w.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (FlagOptions().count(name)) {
      if (value) {
        *error = "--" + name + " takes no value";
        return false;
      }
      out->flags.insert(name);
    } else if (ValueOptions().count(name)) {
      if (!value) {
        if (i + 1 >= words.size()) {
          *error = "--" + name + " needs a value";
          return false;
        }
        value = words[++i];
      }
      out->options[name] = *value;
    } else {
      *error = "unknown option --" + name;
      return false;
    }
  }
  return true;
}

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = Trim(line.substr(7));
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out[key] = value;
  }
  return out;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    item = Trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string ProfilePath(const std::string& name) {
  std::string dir;
  if (const char* d = std::getenv("CHAT_CLI_CONFIG_DIR"); d && *d) {
    dir = d;
  } else {
    const char* home = std::getenv("HOME");
    dir = std::string(home && *home ? home : ".") + "/.config/chat-cli";
  }
  return dir + "/" + name + ".json";
}

std::optional<Profile> LoadProfile(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return std::nullopt;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(buf.str(), ec);
  if (ec || !v.is_object()) {
    *error = path + " is not a JSON object";
    return std::nullopt;
  }
  const json::object& o = v.as_object();
  auto str = [&](const char* k) -> std::string {
    auto* p = o.if_contains(k);
    return p && p->is_string() ? std::string(p->as_string()) : std::string();
  };
  auto num = [&](const char* k) -> uint64_t {  // numbers stored as strings (64-bit safe)
    uint64_t n = 0;
    return ParseUint(str(k), &n) ? n : 0;
  };
  Profile p;
  p.token = str("token");
  p.token_expires_ms = static_cast<int64_t>(num("token_expires_ms"));
  p.user_id = num("user_id");
  p.handle = str("handle");
  p.display_name = str("display_name");
  p.device_id = str("device_id");
  return p;
}

bool SaveProfile(const std::string& path, const Profile& p, std::string* error) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    std::string dir = path.substr(0, slash);
    // mkdir -p with 0700 for what we create.
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos == dir.size() || dir[pos] == '/') {
        std::string part = dir.substr(0, pos);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
          *error = "cannot create " + part + ": " + std::strerror(errno);
          return false;
        }
      }
    }
  }
  json::object o;
  o["token"] = p.token;
  o["token_expires_ms"] = std::to_string(p.token_expires_ms);
  o["user_id"] = std::to_string(p.user_id);
  o["handle"] = p.handle;
  o["display_name"] = p.display_name;
  o["device_id"] = p.device_id;
  std::string text = json::serialize(o) + "\n";

  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, 0600);  // in case the file already existed with a wider mode
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  bool closed = ::close(fd) == 0;
  if (!synced || !closed || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot save " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

int Main(const std::vector<std::string>& words) {
  Args args;
  std::string error;
  if (!ParseArgs(words, &args, &error)) {
    std::cerr << "error: " << EscapeForTerminal(error) << "\n(see chat-cli --help)\n";
    return 2;
  }
  return Cli(std::move(args)).Run();
}

}  // namespace chat::cli
