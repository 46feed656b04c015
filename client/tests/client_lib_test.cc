// Pure parsing in the client library and chat-cli: URLs, the dev code file, arguments, the
// cluster env file and profiles; and what chat-cli prints of other users' text. No network.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli.h"
#include "client/api.h"
#include "client/connection.h"
#include "wait.h"

namespace chat::client {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "client_lib_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void Append(const std::string& file, const std::string& text) {
  std::ofstream out(file, std::ios::app);
  out << text;
}

TEST(ParseUrl, HostPortPath) {
  ConnectOptions o;
  o.token = "kept";
  ASSERT_TRUE(ConnectOptions::ParseUrl("ws://127.0.0.1:1234/ws", &o));
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 1234);
  EXPECT_EQ(o.path, "/ws");
  EXPECT_EQ(o.token, "kept");
  EXPECT_EQ(o.Url(), "ws://127.0.0.1:1234/ws");
}

TEST(ParseUrl, DefaultsAndQuery) {
  ConnectOptions o;
  ASSERT_TRUE(ConnectOptions::ParseUrl("ws://localhost", &o));
  EXPECT_EQ(o.host, "localhost");
  EXPECT_EQ(o.port, 80);
  EXPECT_EQ(o.path, "/");
  ASSERT_TRUE(ConnectOptions::ParseUrl("ws://gw:9000?x=1", &o));
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.path, "/?x=1");
  ASSERT_TRUE(ConnectOptions::ParseUrl("ws://[::1]:8080/ws", &o));
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.Url(), "ws://[::1]:8080/ws");
}

TEST(ParseUrl, RejectsWhatItCannotConnectTo) {
  for (const char* bad : {"", "ws://", "http://127.0.0.1:80/ws", "wss://h:1/ws", "ws://:80/ws", "ws://h:/ws",
                          "ws://h:0/ws", "ws://h:65536/ws", "ws://h:12a/ws", "ws://user@h:1/ws", "127.0.0.1:1234"}) {
    ConnectOptions o;
    o.port = 7;
    EXPECT_FALSE(ConnectOptions::ParseUrl(bad, &o)) << bad;
    EXPECT_EQ(o.port, 7) << "left untouched on failure: " << bad;
  }
}

TEST(CodesFile, NewestLineForThePhoneWins) {
  TempDir dir;
  std::string file = dir.File("codes.log");
  EXPECT_EQ(ReadLatestCode(file, "+15550001111"), "") << "missing file";
  Append(file,
         "1000 +15550001111 111111\n"
         "1001 +15550002222 222222\n"
         "garbage line\n"
         "notanumber +15550001111 999999\n"
         "1002 +15550001111 333333\n"
         "1003 +155500011112 444444\n");
  EXPECT_EQ(ReadLatestCode(file, "+15550001111"), "333333");
  EXPECT_EQ(ReadLatestCode(file, "+15550002222"), "222222");
  EXPECT_EQ(ReadLatestCode(file, "+15550003333"), "");
  auto line = ReadLatestCodeLine(file, "+15550001111");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->unix_ms, 1002);
}

TEST(CodesFile, WaitForCodeIgnoresOlderCodesAndSeesAppendedLine) {
  TempDir dir;
  std::string file = dir.File("codes.log");
  Append(file, "1000 +15550001111 111111\n");
  int64_t now = UnixMillis();
  EXPECT_EQ(WaitForCode(file, "+15550001111", now, milliseconds(100)), "")
      << "a code from before the request must not be taken";
  // The "server" appends only once WaitForCode has read the file and found nothing new: it opens
  // and closes the file for each look, which inotify reports (IN_CLOSE_NOWRITE).
  chat::testing::FileWatch looked(file, IN_CLOSE_NOWRITE);
  std::thread writer([&] {
    EXPECT_TRUE(looked.Wait(milliseconds(5000))) << "WaitForCode never read the file";
    Append(file, std::to_string(UnixMillis()) + " +15550001111 654321\n");
  });
  EXPECT_EQ(WaitForCode(file, "+15550001111", now, milliseconds(5000)), "654321");
  writer.join();
}

TEST(Ids, ClientMsgIdsAreFreshAndValid) {
  std::string a = NewClientMsgId(), b = NewClientMsgId();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 32u);  // within the protocol's 1..64
  std::string phone = RandomTestPhone();
  EXPECT_EQ(phone.size(), 12u);
  EXPECT_EQ(phone.rfind("+1555", 0), 0u);
}

// What chat-cli prints of other users' text holds no byte a terminal acts on: no C0/C1 control, no
// DEL, no bidi override, no raw invalid byte; the hostile text stays visible as escapes.
bool TerminalSafe(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F || c >= 0xF8) return false;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return false;  // C1
    if (s.compare(i, 3, "\xE2\x80\xAE") == 0 || s.compare(i, 3, "\xE2\x81\xA6") == 0) return false;   // RLO, LRI
  }
  return true;
}

TEST(CliOutput, OtherUsersTextIsEscapedBeforePrinting) {
  v1::MessageContent c;
  c.mutable_text()->set_text(
      "hi\x1b[2J\x1b[1;1H\r\nalice: fake line\x07\xC2\x9B"
      "31m\xE2\x80\xAE"
      "txt.exe\xFF");
  const std::string shown = cli::DescribeContent(c);
  EXPECT_TRUE(TerminalSafe(shown)) << shown;
  EXPECT_NE(shown.find("\\x1b[2J"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\\x0d\\nalice: fake line"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\\u{202e}"), std::string::npos) << shown;

  c.mutable_media()->set_kind(v1::MEDIA_KIND_FILE);
  c.mutable_media()->set_url("https://m.example/\x1b]0;title\x07");
  c.mutable_media()->set_file_name("a\nb");
  EXPECT_TRUE(TerminalSafe(cli::DescribeContent(c))) << cli::DescribeContent(c);
  c.mutable_location()->set_label("\x1b[Hhere");
  EXPECT_TRUE(TerminalSafe(cli::DescribeContent(c))) << cli::DescribeContent(c);
  c.mutable_system()->set_text("\x1b[2Jsys");
  EXPECT_TRUE(TerminalSafe(cli::DescribeContent(c))) << cli::DescribeContent(c);

  v1::UserProfile p;
  p.set_handle("u_\x1b[1m");
  p.set_display_name("Bob\xE2\x81\xA6\r\n");
  EXPECT_TRUE(TerminalSafe(cli::Who(p))) << cli::Who(p);
  EXPECT_EQ(cli::Who(p), "@u_\\x1b[1m (Bob\\u{2066}\\x0d\\n)");
  // Your remark name for a contact is what you see of them.
  p.set_handle("bob_wang");
  p.set_remark("Bobby");
  EXPECT_EQ(cli::Who(p), "@bob_wang (Bobby)");
}

}  // namespace
}  // namespace chat::client

namespace chat::cli {
namespace {

// The terminal QR code: a 4-module quiet zone of light glyphs around the symbol, two module rows
// per line, and the finder pattern's dark ring where a scanner looks for it.
TEST(CliQr, DrawsTheSymbolWithItsQuietZone) {
  const std::string art = QrTerminalArt("q1000000001234abcd" + std::string(32, 'e'));
  ASSERT_FALSE(art.empty());
  std::vector<std::u32string> lines;
  std::u32string line;
  for (size_t i = 0; i < art.size();) {
    const unsigned char c = static_cast<unsigned char>(art[i]);
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
      ++i;
    } else if (c == ' ') {
      line += U' ';
      ++i;
    } else {
      ASSERT_EQ(c, 0xE2) << "only spaces and block glyphs";
      const char32_t g = art.substr(i, 3) == "\u2588" ? U'F' : art.substr(i, 3) == "\u2580" ? U'T' : U'B';
      ASSERT_TRUE(art.substr(i, 3) == "\u2588" || art.substr(i, 3) == "\u2580" || art.substr(i, 3) == "\u2584");
      line += g;
      i += 3;
    }
  }
  ASSERT_FALSE(lines.empty());
  const size_t width = lines[0].size();  // modules + 8
  ASSERT_GE(width, 21u + 8);
  EXPECT_EQ(lines.size(), (width + 1) / 2);
  for (const auto& l : lines) EXPECT_EQ(l.size(), width);
  EXPECT_EQ(lines[0], std::u32string(width, U'F')) << "the quiet zone is light";
  EXPECT_EQ(lines[1], std::u32string(width, U'F'));
  // Line 2 holds module rows 4 and 5: row 4 is the top edge of the finder patterns (dark), row 5
  // light inside them. At columns 4..10 the top half is dark, the bottom light except the ring's sides.
  EXPECT_EQ(lines[2][4], U' ') << "the ring's left side: dark in both rows";
  EXPECT_EQ(lines[2][7], U'B');
  EXPECT_EQ(lines[2][0], U'F');
  EXPECT_TRUE(QrTerminalArt(std::string(4000, 'x')).empty()) << "too long for any QR version";
}

TEST(CliArgs, OptionsFlagsAndPositionals) {
  Args a;
  std::string err;
  ASSERT_TRUE(ParseArgs(
      {"--json", "--url", "ws://h:1/ws", "send", "bob", "hi", "--limit=5", "-3", "--", "--not-an-option"}, &a, &err))
      << err;
  EXPECT_TRUE(a.flags.count("json"));
  EXPECT_EQ(a.options["url"], "ws://h:1/ws");
  EXPECT_EQ(a.options["limit"], "5");
  EXPECT_EQ(a.positional, (std::vector<std::string>{"send", "bob", "hi", "-3", "--not-an-option"}));
}

TEST(CliArgs, Errors) {
  Args a;
  std::string err;
  EXPECT_FALSE(ParseArgs({"--bogus"}, &a, &err));
  EXPECT_NE(err.find("bogus"), std::string::npos);
  EXPECT_FALSE(ParseArgs({"--phone"}, &a, &err));
  EXPECT_FALSE(ParseArgs({"--json=1"}, &a, &err));
}

TEST(CliEnv, ReadsClusterEnvFile) {
  std::string file =
      (std::filesystem::temp_directory_path() / ("cli_env_" + std::to_string(::getpid()) + ".env")).string();
  {
    std::ofstream out(file);
    out << "# comment\n"
           "GATEWAY_URLS=ws://127.0.0.1:1/ws, ws://127.0.0.1:2/ws\n"
           "export CHAT_CODES_FILE=\"/tmp/x/codes.log\"\n"
           "BROKEN\n";
  }
  auto env = ReadEnvFile(file);
  std::filesystem::remove(file);
  EXPECT_EQ(SplitList(env["GATEWAY_URLS"]), (std::vector<std::string>{"ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"}));
  EXPECT_EQ(env["CHAT_CODES_FILE"], "/tmp/x/codes.log");
  EXPECT_EQ(env.count("BROKEN"), 0u);
  EXPECT_TRUE(ReadEnvFile("/nonexistent/cluster.env").empty());
}

TEST(CliProfile, RoundTripsWithPrivateMode) {
  std::string dir = (std::filesystem::temp_directory_path() / ("cli_profile_" + std::to_string(::getpid()))).string();
  std::string path = dir + "/sub/alice.json";
  Profile p;
  p.token = "tok.en";
  p.token_expires_ms = 1700000000123;
  p.user_id = 18446744073709551557ull;  // > 2^53: must survive JSON
  p.handle = "alice_1";
  p.display_name = "Alice \"A\"";
  p.device_id = "cli-0123";
  std::string err;
  ASSERT_TRUE(SaveProfile(path, p, &err)) << err;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = LoadProfile(path, &err);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(back->token, p.token);
  EXPECT_EQ(back->token_expires_ms, p.token_expires_ms);
  EXPECT_EQ(back->user_id, p.user_id);
  EXPECT_EQ(back->handle, p.handle);
  EXPECT_EQ(back->display_name, p.display_name);
  EXPECT_EQ(back->device_id, p.device_id);
}

}  // namespace
}  // namespace chat::cli
