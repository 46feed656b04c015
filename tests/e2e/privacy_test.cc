// The privacy scan of issue 10: one scenario that makes every identity and contacts request and
// event happen, over both encodings and two gateways and account shards, records every WebSocket
// message every client received, and then reads every process's whole log. A user's phone number
// must appear nowhere (with or without "+", as its national digits, or as its subscriber digits
// standing alone) except in the `phone` of that user's own Account; no log line may hold a one-time
// code or a token.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "client/api.h"
#include "cluster.h"
#include "common/codec.h"
#include "common/shard.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
constexpr auto kEventWait = std::chrono::seconds(5);

struct Received {
  WireEncoding encoding;
  std::string bytes;
};

// Where a phone number shows in `text`: "+15551234567", "15551234567", "5551234567", or its last
// 7 digits as a number of their own (not inside a longer digit run). Empty when nowhere.
std::string FindPhone(const std::string& text, const std::string& phone) {
  const std::string digits = phone.substr(1);
  for (const std::string& form : {phone, digits, digits.substr(1)})
    if (text.find(form) != std::string::npos) return form;
  const std::string subscriber = digits.substr(digits.size() - 7);
  for (size_t at = text.find(subscriber); at != std::string::npos; at = text.find(subscriber, at + 1)) {
    const bool digit_before = at > 0 && std::isdigit(static_cast<unsigned char>(text[at - 1]));
    const bool digit_after = at + 7 < text.size() && std::isdigit(static_cast<unsigned char>(text[at + 7]));
    if (!digit_before && !digit_after) return subscriber;
  }
  return "";
}

// Clears the phone of every Account a frame carries (the only place a number may be), after checking
// it is the account owner's own number.
void StripOwnPhones(v1::ServerFrame* f, const std::map<uint64_t, std::set<std::string>>& phones_of) {
  if (!f->has_reply()) return;
  v1::Reply* r = f->mutable_reply();
  v1::Account* a = r->has_account()        ? r->mutable_account()
                   : r->has_session()      ? r->mutable_session()->mutable_account()
                   : r->has_authenticate() ? r->mutable_authenticate()->mutable_account()
                                           : nullptr;
  if (!a || a->phone().empty()) return;
  auto it = phones_of.find(a->profile().user_id());
  EXPECT_TRUE(it != phones_of.end() && it->second.count(a->phone()))
      << "an Account carries a number that is not its owner's";
  a->clear_phone();
}

class Privacy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.account_shards = 2;
    o.limits.account.code_resend_interval_s = 0;  // several codes per phone in one scenario
    cluster_ = new TestCluster(o);
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(cluster_) << "the suite's cluster did not start (see above)"; }

  std::string CodeFor(Connection& conn, const std::string& phone) { return cluster_->CodeFor(conn, phone); }

  void Token(const std::string& t) { tokens_.push_back(t); }
  static void Ok(const v1::Reply& r, const char* what) {
    EXPECT_EQ(r.status(), v1::OK) << what << ": " << client::DescribeError(r);
  }

  static TestCluster* cluster_;
  std::vector<std::string> tokens_;
};
TestCluster* Privacy::cluster_ = nullptr;

TEST_F(Privacy, NoPhoneNumberCodeOrTokenLeaksFromAnyRequestEventOrLog) {
  std::mutex mu;
  std::vector<Received> received;
  cluster_->RecordFrames([&](WireEncoding enc, const std::string& bytes) {
    std::lock_guard lock(mu);
    received.push_back({enc, bytes});
  });

  User alice = cluster_->SignUp(0, kProto, "Alice");
  User bob = cluster_->SignUp(1, kJson, "Bob");
  User carol = cluster_->SignUp(1, kProto, "Carol");
  User dave = cluster_->SignUp(0, kJson, "Dave");
  std::map<uint64_t, std::set<std::string>> phones_of;
  for (const User* u : {&alice, &bob, &carol, &dave}) {
    phones_of[u->id].insert(u->phone);
    Token(u->token);
  }

  // Friends, profiles, handles, remarks, blocks (Alice's second device hears of her changes).
  auto alice_tablet = cluster_->Connect(alice, 1, kJson);
  cluster_->MakeFriends(alice, bob);
  cluster_->MakeFriends(carol, alice);
  Ok(client::SetProfile(alice.c(), "Alice W.", "m_" + std::string(20, 'b'), "at the crag"), "set_profile");
  Ok(client::SetDisplayName(bob.c(), "Bob B."), "set_display_name");
  const std::string handle = "pv" + std::to_string(alice.id % 100000000);
  Ok(client::SetHandle(alice.c(), handle), "set_handle");
  Ok(client::LookupUser(bob.c(), handle), "lookup_user");
  Ok(client::GetProfiles(bob.c(), {alice.id, carol.id, dave.id}), "get_profiles");
  Ok(client::SetRemark(bob.c(), alice.id, "Al"), "set_remark");
  Ok(client::BlockUser(alice.c(), carol.id, true), "block_user");
  Ok(client::BlockUser(alice.c(), carol.id, false), "unblock");
  Ok(client::ListContacts(alice.c()), "list_contacts");
  ASSERT_TRUE(bob.c().WaitEvent([](const v1::Event& e) { return e.has_profile_changed(); }, kEventWait));
  ASSERT_TRUE(alice_tablet->WaitEvent([](const v1::Event& e) { return e.has_contact_updated(); }, kEventWait));

  // Finding people: QR code, phone search (private, then allowed), requests in and out, ignore.
  v1::Reply qr = client::MyQrCode(alice.c(), true);
  Ok(qr, "my_qr_code");
  v1::Reply found = client::ResolveQrCode(dave.c(), qr.qr_code().token());
  Ok(found, "resolve_qr_code");
  EXPECT_EQ(found.profile().user_id(), alice.id);
  Ok(client::SendFriendRequest(dave.c(), alice.id, "saw your code", v1::FRIEND_REQUEST_SOURCE_QR_CODE), "request");
  v1::Reply sent = client::ListFriendRequests(dave.c(), true);
  Ok(sent, "list_friend_requests outgoing");
  ASSERT_EQ(sent.friend_requests().requests_size(), 1);
  EXPECT_EQ(sent.friend_requests().requests(0).to().user_id(), alice.id);
  Ok(client::ListFriendRequests(alice.c()), "list_friend_requests");
  Ok(client::IgnoreFriendRequest(alice.c(), dave.id), "ignore_friend_request");
  EXPECT_EQ(client::ListFriendRequests(dave.c(), true).friend_requests().requests_size(), 0);
  v1::Reply rotated = client::MyQrCode(alice.c(), true);
  EXPECT_EQ(client::ResolveQrCode(dave.c(), qr.qr_code().token()).status(), v1::NOT_FOUND) << "rotated away";
  Ok(client::ResolveQrCode(dave.c(), rotated.qr_code().token()), "resolve the new code");
  EXPECT_EQ(client::LookupPhone(dave.c(), alice.phone).status(), v1::NOT_FOUND);
  Ok(client::SetPrivacy(alice.c(), true), "set_privacy");
  Ok(client::LookupPhone(dave.c(), alice.phone), "lookup_phone");
  Ok(client::SendFriendRequest(dave.c(), alice.id, "found your number", v1::FRIEND_REQUEST_SOURCE_PHONE_SEARCH),
     "request by phone");
  Ok(client::AcceptFriendRequest(alice.c(), dave.id), "accept");

  // Messages, a contact card, a group.
  const std::string ab = DirectConversationId(alice.id, bob.id);
  const uint64_t seq = SendTextOk(alice.c(), ab, "hi Bob");
  ASSERT_TRUE(WaitForMessage(bob.c(), ab, seq));
  v1::MessageContent card;
  card.mutable_contact_card()->set_user_id(carol.id);
  Ok(client::SendContent(alice.c(), ab, client::NewClientMsgId(), card), "contact card");
  Ok(client::SendFriendRequest(bob.c(), carol.id, "Alice sent me your card", v1::FRIEND_REQUEST_SOURCE_CARD),
     "request by card");
  Ok(client::GetHistory(bob.c(), ab), "get_history");
  Ok(client::ListConversations(bob.c()), "list_conversations");
  Ok(client::MarkRead(bob.c(), ab, seq), "mark_read");
  v1::Reply group = client::CreateGroup(alice.c(), "climbers", {bob.id, carol.id});
  Ok(group, "create_group");
  Ok(client::ListGroupMembers(bob.c(), group.group().group().group_id()), "list_group_members");

  // Devices: a new device is announced, refreshed, listed and logged out.
  std::string error;
  auto tablet = Connection::Connect(cluster_->Options(0, kJson), &error);
  ASSERT_TRUE(tablet) << error;
  v1::Reply login = client::LogIn(*tablet, bob.phone, CodeFor(*tablet, bob.phone), "bob-tablet");
  Ok(login, "log_in");
  Token(login.session().token());
  ASSERT_TRUE(bob.c().WaitEvent([](const v1::Event& e) { return e.has_new_device(); }, kEventWait));
  v1::Reply refreshed = client::RefreshToken(*tablet);
  Ok(refreshed, "refresh_token");
  Token(refreshed.session().token());
  Ok(client::ListDevices(bob.c()), "list_devices");
  Ok(client::LogOut(bob.c(), login.session().session_id()), "log_out");
  uint16_t close_code = 0;
  EXPECT_TRUE(tablet->WaitClosed(kEventWait, &close_code));

  // A new number for Carol, a one-way delete, and Dave leaves.
  std::string carol_new;
  do carol_new = client::RandomTestPhone();
  while (ShardOfPhone(carol_new, 2) == ShardOfPhone(carol.phone, 2));
  phones_of[carol.id].insert(carol_new);
  auto other = Connection::Connect(cluster_->Options(1, kJson), &error);
  ASSERT_TRUE(other) << error;
  const std::string new_code = CodeFor(*other, carol_new);
  Ok(client::ChangePhone(carol.c(), carol_new, CodeFor(carol.c(), carol.phone), new_code), "change_phone");
  Ok(client::GetMe(carol.c()), "get_me");
  Ok(client::DeleteContact(alice.c(), carol.id), "delete_contact");
  Ok(client::DeleteAccount(dave.c(), CodeFor(dave.c(), dave.phone)), "delete_account");
  Ok(client::GetProfiles(alice.c(), {dave.id, carol.id}), "profiles after");

  // ---- the scan of every frame
  std::vector<std::string> all_phones;
  for (const auto& [id, phones] : phones_of) all_phones.insert(all_phones.end(), phones.begin(), phones.end());
  std::vector<Received> frames;
  {
    std::lock_guard lock(mu);
    frames = received;
  }
  ASSERT_GT(frames.size(), 60u) << "the recorder saw fewer frames than the scenario has replies";
  std::set<int> kinds_seen;
  for (const Received& f : frames) {
    v1::ServerFrame frame;
    std::string decode_error;
    ASSERT_TRUE(DecodeServerFrame(f.bytes, f.encoding, &frame, &decode_error)) << decode_error;
    if (frame.has_event()) kinds_seen.insert(static_cast<int>(frame.event().event_case()));
    StripOwnPhones(&frame, phones_of);
    const std::string rest = EncodeServerFrame(frame, f.encoding);
    for (const std::string& phone : all_phones) {
      const std::string hit = FindPhone(rest, phone);
      EXPECT_EQ(hit, "") << "a received frame shows a phone number as \"" << hit
                         << "\": " << (f.encoding == kJson ? rest : frame.ShortDebugString());
    }
  }
  for (int kind : {v1::Event::kMessage, v1::Event::kFriendRequest, v1::Event::kFriendAdded, v1::Event::kGroupChanged,
                   v1::Event::kKicked, v1::Event::kNewDevice, v1::Event::kContactUpdated, v1::Event::kProfileChanged})
    EXPECT_TRUE(kinds_seen.count(kind)) << "the scenario never produced event kind " << kind;

  // ---- the scan of every log line, for numbers, tokens and every code the (development) SMS
  // sender sent: its file, codes.log, is the SMS, not a log
  std::vector<std::string> codes;
  {
    std::ifstream sms(cluster_->codes_file());
    std::string ms, phone, code;
    while (sms >> ms >> phone >> code) codes.push_back(code);
  }
  ASSERT_GE(codes.size(), 8u);
  size_t lines = 0;
  const std::regex six_digits("(^|[^0-9])([0-9]{6})([^0-9]|$)");
  for (const std::string& path : cluster_->LogPaths()) {
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    std::string line;
    while (std::getline(in, line)) {
      ++lines;
      for (const std::string& phone : all_phones) {
        const std::string hit = FindPhone(line, phone);
        EXPECT_EQ(hit, "") << path << " logs a phone number as \"" << hit << "\": " << line;
      }
      for (const std::string& t : tokens_)
        EXPECT_EQ(line.find(t), std::string::npos) << path << " logs a token: " << line;
      std::string lower = line;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lower.find("code") == std::string::npos) continue;
      for (std::sregex_iterator m(line.begin(), line.end(), six_digits), end; m != end; ++m)
        for (const std::string& code : codes) EXPECT_NE((*m)[2].str(), code) << path << " logs a code: " << line;
    }
  }
  EXPECT_GT(lines, 20u) << "the logs are too short to mean anything";
}

}  // namespace
}  // namespace chat::e2e
