// End-to-end bad input: every kind of broken frame, token and handshake, each on its own
// connection to gateway 0, against one shared cluster with small frame and auth-timeout limits.
// After each case a healthy pair of users (one on each gateway) must still exchange messages, and
// the connection that got an error reply (not a close) must still work.
#include <gtest/gtest.h>

#include <ctime>

#include "cluster.h"
#include "common/shard.h"
#include "common/token.h"
#include "common/utf8.h"
#include "raw_ws.h"

namespace chat::e2e {
namespace {

using client::Connection;
constexpr auto kProto = WireEncoding::kProto;
constexpr auto kJson = WireEncoding::kJson;
constexpr auto kReplyTimeout = 5s;

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.limits.gateway.max_frame_bytes = 4096;
    o.limits.gateway.auth_timeout_ms = 3000;
    cluster_ = new TestCluster(o);
    peter_ = new User(cluster_->SignUp(0, kProto, "Peter"));
    quinn_ = new User(cluster_->SignUp(1, kJson, "Quinn"));
    mallory_ = new User(cluster_->SignUp(0, kJson, "Mallory"));
    cluster_->MakeFriends(*peter_, *quinn_);
  }
  static void TearDownTestSuite() {
    delete mallory_;
    delete quinn_;
    delete peter_;
    delete cluster_;
  }

  void SetUp() override {
    ASSERT_TRUE(cluster_ && peter_ && quinn_ && mallory_) << "the suite's cluster did not start (see above)";
  }
  TestCluster& cluster() { return *cluster_; }

  // A new connection to gateway 0: Mallory's token, or none.
  std::unique_ptr<Connection> Open(WireEncoding enc, bool authenticated = true) {
    if (authenticated) return cluster_->Connect(*mallory_, 0, enc);
    std::string error;
    auto c = Connection::Connect(cluster_->Options(0, enc), &error);
    if (!c) throw std::runtime_error("connect: " + error);
    return c;
  }

  // Peter (gateway 0, proto) and Quinn (gateway 1, JSON) still talk both ways.
  void ExpectHealthyPairWorks() {
    const std::string conv = DirectConversationId(peter_->id, quinn_->id);
    const std::string text = "still fine " + client::NewClientMsgId();
    uint64_t seq = 0;
    ASSERT_NO_THROW(seq = SendTextOk(peter_->c(), conv, text));
    auto m = WaitForMessage(quinn_->c(), conv, seq);
    ASSERT_TRUE(m) << "Quinn stopped receiving after the bad input";
    EXPECT_EQ(TextOf(*m), text);
    ASSERT_NO_THROW(seq = SendTextOk(quinn_->c(), conv, "ack " + text));
    ASSERT_TRUE(WaitForMessage(peter_->c(), conv, seq)) << "Peter stopped receiving after the bad input";
    EXPECT_TRUE(mallory_->c().is_open()) << "another connection of the misbehaving user was torn down";
  }

  // The connection still answers requests.
  static void ExpectStillServes(Connection& c) {
    v1::Reply r = client::GetMe(c);
    EXPECT_EQ(r.status(), v1::OK) << "connection unusable after an error reply: " << client::DescribeError(r);
  }

  // Waits for the close and returns its code (0 if it did not close in time).
  static uint16_t CloseCode(Connection& c, std::chrono::milliseconds timeout = 10s) {
    uint16_t code = 0;
    if (!c.WaitClosed(timeout, &code)) return 0;
    return code;
  }

  static TestCluster* cluster_;
  static User* peter_;
  static User* quinn_;
  static User* mallory_;
};
TestCluster* BadInput::cluster_ = nullptr;
User* BadInput::peter_ = nullptr;
User* BadInput::quinn_ = nullptr;
User* BadInput::mallory_ = nullptr;

TEST_F(BadInput, MalformedJsonGetsRequestIdZero) {
  auto c = Open(kJson);
  ASSERT_TRUE(c->SendRaw("{\"requestId\":\"3\",\"getMe\":{", /*binary=*/false));
  auto r = c->NextUnmatchedReply(kReplyTimeout);
  ASSERT_TRUE(r) << "no reply to a malformed JSON frame";
  EXPECT_EQ(r->request_id(), 0u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  EXPECT_FALSE(r->message().empty());
  ExpectStillServes(*c);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, InvalidProtobufGetsRequestIdZero) {
  auto c = Open(kProto);
  // Field 3 (length-delimited) claiming 127 bytes with 3 present: truncated.
  ASSERT_TRUE(c->SendRaw(std::string("\x08\x07\x1a\x7f"
                                     "abc",
                                     7),
                         /*binary=*/true));
  auto r = c->NextUnmatchedReply(kReplyTimeout);
  ASSERT_TRUE(r) << "no reply to an undecodable protobuf frame";
  EXPECT_EQ(r->request_id(), 0u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  ExpectStillServes(*c);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UnknownRequestKeepsItsRequestId) {
  auto c = Open(kJson);
  ASSERT_TRUE(c->SendRaw(R"({"requestId":"5","noSuchRequest":{}})", false));
  auto r = c->NextUnmatchedReply(kReplyTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 5u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  // A frame with no request at all.
  ASSERT_TRUE(c->SendRaw(R"({"requestId":"6"})", false));
  r = c->NextUnmatchedReply(kReplyTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 6u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  ExpectStillServes(*c);

  // The same on protobuf: request id 7 plus a request field number this server does not know.
  auto p = Open(kProto);
  ASSERT_TRUE(p->SendRaw(std::string("\x08\x07\xfa\x06\x00", 5), true));  // field 111, empty message
  r = p->NextUnmatchedReply(kReplyTimeout);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 7u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  ExpectStillServes(*p);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, WrongJsonFieldTypesAreUndecodable) {
  auto c = Open(kJson);
  for (const char* frame : {R"({"requestId":"1","sendMessage":{"conversationId":5}})",
                            R"({"requestId":"2","sendMessage":{"conversationId":{"a":1},"clientMsgId":"x"}})",
                            R"({"requestId":"3","getHistory":{"conversationId":"g.1","afterSeq":"abc"}})",
                            R"({"requestId":"x","getMe":{}})"}) {
    SCOPED_TRACE(frame);
    ASSERT_TRUE(c->SendRaw(frame, false));
    auto r = c->NextUnmatchedReply(kReplyTimeout);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
    EXPECT_EQ(r->request_id(), 0u) << "docs/protocol.md 1.3: a wrong JSON type makes the frame undecodable";
  }
  ExpectStillServes(*c);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, MissingSendFieldsAreInvalidArgument) {
  auto c = Open(kProto);
  const std::string conv = DirectConversationId(peter_->id, mallory_->id);
  cluster().MakeFriends(*mallory_, *peter_);

  v1::ClientFrame f;
  f.mutable_send_message()->set_conversation_id(conv);
  f.mutable_send_message()->set_client_msg_id(client::NewClientMsgId());
  v1::Reply r = c->Call(f);  // no content
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "no content: " << client::DescribeError(r);

  f.Clear();
  f.mutable_send_message()->set_conversation_id(conv);
  f.mutable_send_message()->mutable_content()->mutable_text()->set_text("no id");
  r = c->Call(f);  // no client_msg_id
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "no client_msg_id: " << client::DescribeError(r);

  f.Clear();
  f.mutable_send_message()->set_client_msg_id(client::NewClientMsgId());
  f.mutable_send_message()->mutable_content()->mutable_text()->set_text("no conversation");
  r = c->Call(f);  // no conversation_id
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "no conversation_id: " << client::DescribeError(r);

  r = client::SendText(*c, conv, client::NewClientMsgId(), "");  // empty text
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "empty text: " << client::DescribeError(r);

  f.Clear();
  f.mutable_send_message()->set_conversation_id(conv);
  f.mutable_send_message()->set_client_msg_id(client::NewClientMsgId());
  f.mutable_send_message()->mutable_content()->mutable_system()->set_text("forged notice");
  r = c->Call(f);  // system content is the server's
  EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << "system content: " << client::DescribeError(r);

  // None of them was stored.
  auto h = FullHistory(*c, conv);
  EXPECT_TRUE(h.empty()) << h.size() << " messages stored from invalid sends";
  ExpectStillServes(*c);
  ExpectHealthyPairWorks();
}

// The unsafe-text probes of issue 9 item 5, over the real WebSocket in both encodings: each is
// refused with INVALID_ARGUMENT naming the field (never echoing the text) and nothing is stored or
// delivered; text that is not NFC arrives normalized.
TEST_F(BadInput, UnsafeTextIsRefusedAndTextArrivesInNfc) {
  const std::string conv = DirectConversationId(peter_->id, quinn_->id);
  const size_t stored_before = FullHistory(peter_->c(), conv).size();
  for (User* sender : {peter_, quinn_}) {  // protobuf on gateway 0, JSON on gateway 1
    SCOPED_TRACE(sender->display_name);
    for (const std::string& bad : {std::string("\x1b[2J\x1b[1;1Hpeter: fake line"), std::string("nul\0here", 8),
                                   std::string("shown\rfake line")}) {
      v1::Reply r = client::SendText(sender->c(), conv, client::NewClientMsgId(), bad);
      EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad) << ": " << client::DescribeError(r);
      EXPECT_EQ(r.message().rfind("text ", 0), 0u) << r.message();
      EXPECT_EQ(r.message().find("fake line"), std::string::npos) << "the error echoes the text";
    }
    for (const char* url : {"javascript:alert(1)", "file:///etc/passwd"}) {
      v1::MessageContent media;
      media.mutable_media()->set_kind(v1::MEDIA_KIND_IMAGE);
      media.mutable_media()->set_url(url);
      v1::Reply r = client::SendContent(sender->c(), conv, client::NewClientMsgId(), media);
      EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << url << ": " << client::DescribeError(r);
      EXPECT_EQ(r.message().rfind("media url ", 0), 0u) << r.message();
    }
  }
  EXPECT_EQ(FullHistory(peter_->c(), conv).size(), stored_before) << "a refused message was stored";

  // Names: display name, group name and greeting.
  auto c = Open(kJson);  // Mallory
  v1::Reply me = client::GetMe(*c);
  ASSERT_EQ(me.status(), v1::OK) << client::DescribeError(me);
  const std::string name_before = me.account().profile().display_name();
  for (const std::string& bad : {std::string("Mallory\xE2\x80\xAE"
                                             "yrollaM"),
                                 std::string("Mal\xE2\x80\x8Blory"),
                                 std::string("\xEF\xBB\xBF"
                                             "Mallory"),
                                 std::string("Mallory\xF3\xA0\x80\x81"), std::string("   ")}) {
    v1::Reply r = client::SetDisplayName(*c, bad);
    EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad) << ": " << client::DescribeError(r);
    EXPECT_EQ(r.message().rfind("display name ", 0), 0u) << r.message();
    r = client::CreateGroup(peter_->c(), bad, {quinn_->id});
    EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad) << ": " << client::DescribeError(r);
    EXPECT_EQ(r.message().rfind("group name ", 0), 0u) << r.message();
    r = client::SendFriendRequest(*c, quinn_->id, bad);
    EXPECT_EQ(r.status(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad) << ": " << client::DescribeError(r);
    EXPECT_EQ(r.message().rfind("greeting ", 0), 0u) << r.message();
  }
  me = client::GetMe(*c);
  ASSERT_EQ(me.status(), v1::OK) << client::DescribeError(me);
  EXPECT_EQ(me.account().profile().display_name(), name_before) << "a refused name was stored";

  // NFC: "e" + U+0301 is stored and delivered as "é", on both encodings.
  const std::string tag = " " + client::NewClientMsgId();
  uint64_t seq = SendTextOk(peter_->c(), conv, "cafe\xCC\x81" + tag);
  auto m = WaitForMessage(quinn_->c(), conv, seq);
  ASSERT_TRUE(m) << "Quinn did not get the message";
  EXPECT_EQ(TextOf(*m), "caf\xC3\xA9" + tag);
  seq = SendTextOk(quinn_->c(), conv, "Ko\xCC\x88ln" + tag);
  m = WaitForMessage(peter_->c(), conv, seq);
  ASSERT_TRUE(m) << "Peter did not get the message";
  EXPECT_EQ(TextOf(*m), "K\xC3\xB6ln" + tag);
  ExpectStillServes(*c);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, OversizedFrameClosesWith1009) {
  auto c = Open(kJson);
  std::string frame = R"({"requestId":"1","getMe":{},"pad":")" +
                      std::string(cluster().limits().gateway.max_frame_bytes + 100, 'x') + "\"}";
  ASSERT_TRUE(c->SendRaw(frame, false));
  EXPECT_EQ(CloseCode(*c), 1009);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, InvalidUtf8TextClosesWith1007) {
  auto c = Open(kJson);
  ASSERT_TRUE(c->SendRaw("{\"requestId\":\"1\",\"getMe\":{},\"x\":\"\xff\xfe\xc0\xaf\"}", false));
  EXPECT_EQ(CloseCode(*c), 1007);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, WrongFrameTypeClosesWith1008) {
  auto json = Open(kJson);
  v1::ClientFrame f;
  f.set_request_id(1);
  f.mutable_get_me();
  ASSERT_TRUE(json->SendRaw(f.SerializeAsString(), /*binary=*/true));
  EXPECT_EQ(CloseCode(*json), 1008) << "binary frame on chat.v1.json";

  auto proto = Open(kProto);
  ASSERT_TRUE(proto->SendRaw(R"({"requestId":"1","getMe":{}})", /*binary=*/false));
  EXPECT_EQ(CloseCode(*proto), 1008) << "text frame on chat.v1.proto";
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UnauthenticatedRequestsAreRefused) {
  auto c = Open(kProto, /*authenticated=*/false);
  v1::Reply r = client::GetMe(*c);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  r = client::SendText(*c, DirectConversationId(peter_->id, quinn_->id), client::NewClientMsgId(), "sneaky");
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  r = client::ListConversations(*c);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  EXPECT_TRUE(c->is_open());
  // The sneaky send was not stored.
  auto h = FullHistory(peter_->c(), DirectConversationId(peter_->id, quinn_->id));
  for (const auto& m : h) EXPECT_NE(TextOf(m), "sneaky");
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, ExpiredAndForgedTokensAreRefusedWith401) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string expired = cluster().signer().Issue({peter_->id, peter_->device_id, now - 3600});
  const std::string forged =
      TokenSigner(TokenKeys::Single(cluster().config().token_keys.signing_key_id, "not-the-cluster-secret-0123456789"))
          .Issue({peter_->id, peter_->device_id, now + 3600});
  for (const auto& [name, token] : std::vector<std::pair<std::string, std::string>>{
           {"expired", expired}, {"forged", forged}, {"garbage", "v1.garbage.token"}}) {
    for (bool in_query : {false, true}) {
      SCOPED_TRACE(name + (in_query ? " (query)" : " (header)"));
      auto o = cluster().Options(0, kProto);
      o.token = token;
      o.token_in_query = in_query;
      std::string error;
      int http = 0;
      auto c = Connection::Connect(o, &error, &http);
      EXPECT_FALSE(c) << "the upgrade was accepted";
      EXPECT_EQ(http, 401) << error;
    }
  }
  // The real token still works.
  auto good = cluster().Connect(*peter_, 0, kProto);
  ExpectStillServes(*good);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, AuthenticateWithForgedTokenIsUnauthenticated) {
  auto c = Open(kJson, /*authenticated=*/false);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string forged =
      TokenSigner(TokenKeys::Single(cluster().config().token_keys.signing_key_id, "not-the-cluster-secret-0123456789"))
          .Issue({peter_->id, peter_->device_id, now + 3600});
  v1::Reply r = client::Authenticate(*c, forged);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  const std::string expired = cluster().signer().Issue({peter_->id, peter_->device_id, now - 60});
  r = client::Authenticate(*c, expired);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << client::DescribeError(r);
  r = client::GetMe(*c);
  EXPECT_EQ(r.status(), v1::UNAUTHENTICATED) << "a forged token authenticated the connection";
  // The connection stays open and a good token then works.
  ASSERT_TRUE(c->is_open());
  r = client::Authenticate(*c, mallory_->token);
  ASSERT_EQ(r.status(), v1::OK) << client::DescribeError(r);
  EXPECT_EQ(r.authenticate().account().profile().user_id(), mallory_->id);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UnauthenticatedConnectionClosedWith4001AfterAuthTimeout) {
  const auto start = std::chrono::steady_clock::now();
  auto c = Open(kProto, /*authenticated=*/false);
  const auto limit = std::chrono::milliseconds(cluster().limits().gateway.auth_timeout_ms);
  uint16_t code = CloseCode(*c, limit + 10s);
  EXPECT_EQ(code, 4001);
  EXPECT_GE(std::chrono::steady_clock::now() - start, limit - 100ms) << "closed before auth_timeout_ms";
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UnknownSubprotocolIsRefusedWith400) {
  auto o = cluster().Options(0, kProto);
  o.subprotocols_override = {"chat.v9.xml"};
  std::string error;
  int http = 0;
  auto c = Connection::Connect(o, &error, &http);
  EXPECT_FALSE(c) << "the upgrade was accepted";
  EXPECT_EQ(http, 400) << error;

  // No subprotocol at all means JSON (docs/protocol.md 1.2).
  o.subprotocols_override.clear();
  o.offer_no_subprotocol = true;
  o.token = mallory_->token;
  auto json = Connection::Connect(o, &error, &http);
  ASSERT_TRUE(json) << error;
  EXPECT_EQ(json->encoding(), kJson);
  ExpectStillServes(*json);
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UpgradeNeedsVersion13AndAKey) {
  const auto o = cluster().Options(0, kProto);
  std::string common = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  {
    RawWs raw(o);
    std::string head =
        raw.Upgrade("/ws", common + "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 426") << head;
    EXPECT_NE(head.find("Sec-WebSocket-Version: 13"), std::string::npos) << head;
  }
  {
    RawWs raw(o);
    std::string head = raw.Upgrade("/ws", common + "Sec-WebSocket-Version: 13\r\n");
    EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 400") << head;
  }
  {
    RawWs raw(o);
    std::string head = raw.Upgrade("/ws", RawWs::StandardHeaders(mallory_->token));
    EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 101") << head;
    EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << head;
    EXPECT_NE(head.find("Sec-WebSocket-Protocol: chat.v1.proto"), std::string::npos) << head;
  }
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, UnmaskedFrameClosesWith1002) {
  RawWs raw(cluster().Options(0, kProto));
  ASSERT_EQ(raw.Upgrade("/ws", RawWs::StandardHeaders(mallory_->token)).substr(0, 12), "HTTP/1.1 101");
  raw.SendFrame(0x82, "\x08\x01", /*masked=*/false);
  auto f = raw.ReadFrame();
  ASSERT_TRUE(f) << "no close frame";
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(CloseCodeOf(*f), 1002);
  EXPECT_TRUE(raw.ReadsEof()) << "the server did not end the connection after its close";
  ExpectHealthyPairWorks();
}

TEST_F(BadInput, PingsFragmentsAndACloseFromTheClient) {
  RawWs raw(cluster().Options(0, kProto));
  ASSERT_EQ(raw.Upgrade("/ws", RawWs::StandardHeaders(mallory_->token)).substr(0, 12), "HTTP/1.1 101");
  raw.SendFrame(0x89, "are you there");
  auto pong = raw.ReadFrame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->payload, "are you there");

  // get_me in two fragments with a ping between them.
  v1::ClientFrame req;
  req.set_request_id(77);
  req.mutable_get_me();
  const std::string bytes = req.SerializeAsString();
  raw.SendFrame(0x02, bytes.substr(0, 2));
  raw.SendFrame(0x89, "mid");
  raw.SendFrame(0x80, bytes.substr(2));
  std::optional<v1::Reply> reply;
  for (int i = 0; i < 5 && !reply; ++i) {  // the pong, then the reply (events may come between)
    auto f = raw.ReadFrame();
    ASSERT_TRUE(f) << "no reply to a fragmented request";
    if (f->opcode != 2) continue;
    v1::ServerFrame sf;
    ASSERT_TRUE(sf.ParseFromString(f->payload));
    if (sf.has_reply() && sf.reply().request_id() == 77) reply = sf.reply();
  }
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status(), v1::OK);
  EXPECT_EQ(reply->account().profile().user_id(), mallory_->id);

  raw.SendFrame(0x88, std::string("\x03\xe8", 2) + "bye");
  std::optional<RawWs::Frame> close;
  while (auto f = raw.ReadFrame()) {
    if (f->opcode == 8) {
      close = f;
      break;
    }
  }
  ASSERT_TRUE(close) << "the close was not answered";
  EXPECT_EQ(CloseCodeOf(*close), 1000);
  EXPECT_TRUE(raw.ReadsEof()) << "the server did not end the connection after the close handshake";
  ExpectHealthyPairWorks();
}

}  // namespace
}  // namespace chat::e2e
