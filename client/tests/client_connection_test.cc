// chat::client::Connection against an in-process fake gateway that speaks the documented
// protocol (subprotocol choice, 401/400 on upgrade, one reply per frame, request_id 0 for
// undecodable frames, pushed events, close codes). The fake is synchronous Beast, one thread per
// connection; it exists to pin the client's behaviour before a real gateway is around.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "client/api.h"
#include "client/connection.h"
#include "common/codec.h"
#include "wait.h"

namespace chat::client {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

constexpr uint64_t kAliceId = 42;

class FakeGateway {
 public:
  FakeGateway() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeGateway() {
    stopping_ = true;
    {  // wake the blocking accept
      net::io_context ioc;
      tcp::socket s(ioc);
      beast::error_code ignored;
      s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ignored);
    }
    accept_thread_.join();
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // wakes blocked reads
    for (auto& t : threads_) t.join();
  }

  uint16_t port() const { return port_; }
  std::string last_authorization() {
    std::lock_guard lock(mu_);
    return last_authorization_;
  }
  std::string last_target() {
    std::lock_guard lock(mu_);
    return last_target_;
  }
  // Waits up to `timeout` for a close frame from the client; its close code, or -1 if none came.
  int WaitClientCloseCode(milliseconds timeout) {
    client_closed_.WaitFor([&] { return client_close_code_.load() != -1; }, timeout);
    return client_close_code_.load();
  }

 private:
  void AcceptLoop() {
    for (;;) {
      tcp::socket s(ioc_);
      beast::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mu_);
      fds_.push_back(s.native_handle());
      threads_.emplace_back([this, sock = std::move(s)]() mutable { Serve(std::move(sock)); });
    }
  }

  static void Reject(tcp::socket& sock, http::status status, const std::string& body) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, "text/plain");
    res.body() = body;
    res.prepare_payload();
    beast::error_code ignored;
    http::write(sock, res, ignored);
  }

  void Serve(tcp::socket sock) {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(sock, buf, req, ec);
    if (ec) return;
    std::string auth(req[http::field::authorization]);
    std::string target(req.target());
    {
      std::lock_guard lock(mu_);
      last_authorization_ = auth;
      last_target_ = target;
    }
    if (auth == "Bearer bad" || target.find("access_token=bad") != std::string::npos)
      return Reject(sock, http::status::unauthorized, "invalid token");
    WireEncoding enc = WireEncoding::kJson;
    std::string chosen;
    std::string offered(req[http::field::sec_websocket_protocol]);
    if (!offered.empty()) {
      if (!ChooseSubprotocol(offered, &enc)) return Reject(sock, http::status::bad_request, "unknown subprotocol");
      chosen = std::string(SubprotocolName(enc));
    }
    websocket::stream<tcp::socket> ws(std::move(sock));
    ws.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
      if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
    }));
    ws.accept(req, ec);
    if (ec) return;

    auto send = [&](const v1::ServerFrame& f, bool wrong_type = false) {
      ws.binary((enc == WireEncoding::kProto) != wrong_type);
      ws.write(net::buffer(EncodeServerFrame(f, enc)), ec);
    };
    for (;;) {
      beast::flat_buffer in;
      ws.read(in, ec);
      if (ec) {
        if (ec == websocket::error::closed) {
          client_close_code_ = ws.reason().code;
          client_closed_.Notify();
        }
        return;
      }
      v1::ClientFrame f;
      std::string err;
      v1::ServerFrame out;
      v1::Reply* reply = out.mutable_reply();
      if (!DecodeClientFrame(beast::buffers_to_string(in.data()), enc, &f, &err)) {
        reply->set_status(v1::INVALID_ARGUMENT);
        reply->set_message(err);
        send(out);
        continue;
      }
      reply->set_request_id(f.request_id());
      switch (f.request_case()) {
        case v1::ClientFrame::kGetMe: {
          auto* p = reply->mutable_account()->mutable_profile();
          p->set_user_id(kAliceId);
          p->set_handle("alice");
          break;
        }
        case v1::ClientFrame::kSendMessage: {
          v1::ServerFrame ev;
          auto* m = ev.mutable_event()->mutable_message()->mutable_message();
          m->set_conversation_id(f.send_message().conversation_id());
          m->set_seq(1);
          *m->mutable_content() = f.send_message().content();
          send(ev);  // the event goes out before the reply
          reply->mutable_send_message()->set_seq(1);
          break;
        }
        case v1::ClientFrame::kListContacts: {
          v1::ServerFrame ev;
          ev.mutable_event()->mutable_read_position()->set_read_seq(1);
          send(ev);
          ev.mutable_event()->mutable_friend_added();
          send(ev);
          ev.mutable_event()->mutable_read_position()->set_read_seq(2);
          send(ev);
          reply->mutable_contacts();
          break;
        }
        case v1::ClientFrame::kLookupUser: {
          const std::string& h = f.lookup_user().handle();
          if (h == "silent") continue;  // never answers
          if (h.rfind("close:", 0) == 0) {
            ws.close(websocket::close_reason(static_cast<websocket::close_code>(std::stoi(h.substr(6))), "told to"),
                     ec);
            // Drain until the client's close reply arrives.
            while (!ec) {
              beast::flat_buffer drain;
              ws.read(drain, ec);
            }
            return;
          }
          if (h == "wrongtype") {
            reply->mutable_profile()->set_handle(h);
            send(out, /*wrong_type=*/true);
            continue;
          }
          reply->mutable_profile()->set_handle(h);
          break;
        }
        case v1::ClientFrame::REQUEST_NOT_SET:
          reply->set_status(v1::INVALID_ARGUMENT);
          reply->set_message("no request");
          break;
        default:
          reply->mutable_empty();
          break;
      }
      send(out);
    }
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> client_close_code_{-1};
  chat::testing::Signal client_closed_;  // raised when client_close_code_ is set
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::string last_authorization_;
  std::string last_target_;
};

class ConnectionTest : public ::testing::Test {
 protected:
  ConnectOptions Options(WireEncoding enc = WireEncoding::kProto) {
    ConnectOptions o;
    o.port = gw_.port();
    o.encoding = enc;
    o.timeout = milliseconds(3000);
    return o;
  }
  std::unique_ptr<Connection> MustConnect(const ConnectOptions& o) {
    std::string err;
    int status = 0;
    auto c = Connection::Connect(o, &err, &status);
    EXPECT_TRUE(c) << err;
    EXPECT_EQ(status, 101);
    return c;
  }
  FakeGateway gw_;
};

TEST_F(ConnectionTest, ProtoCallGetsItsReply) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->negotiated_subprotocol(), "chat.v1.proto");
  EXPECT_EQ(c->encoding(), WireEncoding::kProto);
  v1::Reply r = GetMe(*c);
  EXPECT_EQ(r.status(), v1::OK) << r.message();
  EXPECT_NE(r.request_id(), 0u);
  EXPECT_EQ(r.account().profile().user_id(), kAliceId);
  EXPECT_EQ(c->frame_type_mismatches(), 0u);
}

TEST_F(ConnectionTest, JsonCallGetsItsReply) {
  auto c = MustConnect(Options(WireEncoding::kJson));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->negotiated_subprotocol(), "chat.v1.json");
  EXPECT_EQ(c->encoding(), WireEncoding::kJson);
  v1::Reply r = LookupUser(*c, "bob");
  EXPECT_EQ(r.status(), v1::OK);
  EXPECT_EQ(r.profile().handle(), "bob");
  EXPECT_EQ(c->frame_type_mismatches(), 0u);
}

TEST_F(ConnectionTest, NoSubprotocolOfferedMeansJson) {
  ConnectOptions o = Options();
  o.offer_no_subprotocol = true;
  auto c = MustConnect(o);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->negotiated_subprotocol(), "");
  EXPECT_EQ(c->encoding(), WireEncoding::kJson);
  EXPECT_EQ(GetMe(*c).status(), v1::OK);
}

TEST_F(ConnectionTest, JunkSubprotocolIsRejectedWith400) {
  ConnectOptions o = Options();
  o.subprotocols_override = {"chat.v9.junk"};
  std::string err;
  int status = 0;
  EXPECT_FALSE(Connection::Connect(o, &err, &status));
  EXPECT_EQ(status, 400);
  EXPECT_NE(err.find("400"), std::string::npos) << err;
}

TEST_F(ConnectionTest, TokenGoesInHeaderOrQuery) {
  ConnectOptions o = Options();
  o.token = "good";
  auto c = MustConnect(o);
  EXPECT_EQ(gw_.last_authorization(), "Bearer good");
  c.reset();
  o.token_in_query = true;
  o.token = "a b+c";
  c = MustConnect(o);
  EXPECT_EQ(gw_.last_target(), "/ws?access_token=a%20b%2Bc");
  EXPECT_EQ(gw_.last_authorization(), "");
}

TEST_F(ConnectionTest, BadTokenGets401) {
  for (bool in_query : {false, true}) {
    ConnectOptions o = Options();
    o.token = "bad";
    o.token_in_query = in_query;
    std::string err;
    int status = 0;
    EXPECT_FALSE(Connection::Connect(o, &err, &status));
    EXPECT_EQ(status, 401) << err;
  }
}

TEST_F(ConnectionTest, NothingListeningFailsFastWithoutHttpStatus) {
  ConnectOptions o = Options();
  {
    net::io_context ioc;  // a port that was free a moment ago
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    o.port = a.local_endpoint().port();
  }
  std::string err;
  int status = -1;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(Connection::Connect(o, &err, &status));
  EXPECT_EQ(status, 0);
  EXPECT_FALSE(err.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, o.timeout);
}

TEST_F(ConnectionTest, EventsAreQueuedApartFromReplies) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  v1::Reply r = SendText(*c, "d.1.42", NewClientMsgId(), "hello");
  ASSERT_EQ(r.status(), v1::OK);
  auto e = c->NextEvent(milliseconds(2000));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->has_message());
  EXPECT_EQ(e->message().message().content().text().text(), "hello");
  EXPECT_FALSE(c->NextEvent(milliseconds(50))) << "exactly one event";
}

TEST_F(ConnectionTest, WaitEventKeepsTheOnesItSkips) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  ASSERT_EQ(ListContacts(*c).status(), v1::OK);  // pushes read(1), friend_added, read(2)
  auto fa = c->WaitEvent([](const v1::Event& e) { return e.has_friend_added(); }, milliseconds(2000));
  ASSERT_TRUE(fa);
  EXPECT_EQ(c->PendingEvents(), 2u);
  auto first = c->NextEvent(milliseconds(100));
  auto second = c->NextEvent(milliseconds(100));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->read_position().read_seq(), 1u);
  EXPECT_EQ(second->read_position().read_seq(), 2u);
  EXPECT_FALSE(c->WaitEvent([](const v1::Event&) { return true; }, milliseconds(50)));
}

TEST_F(ConnectionTest, NoReplyMeansDeadlineExceeded) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  auto start = std::chrono::steady_clock::now();
  v1::Reply r = LookupUser(*c, "silent", milliseconds(200));
  EXPECT_EQ(r.status(), v1::DEADLINE_EXCEEDED);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(200));
  EXPECT_TRUE(c->is_open());
  EXPECT_EQ(GetMe(*c).status(), v1::OK) << "the connection is still usable";
}

TEST_F(ConnectionTest, ServerCloseIsReportedAndLaterCallsAreUnavailable) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  v1::Reply r = LookupUser(*c, "close:4008");
  EXPECT_EQ(r.status(), v1::UNAVAILABLE);
  EXPECT_NE(r.message().find("4008"), std::string::npos) << r.message();
  uint16_t code = 0;
  std::string reason;
  ASSERT_TRUE(c->WaitClosed(milliseconds(2000), &code, &reason));
  EXPECT_EQ(code, 4008);
  EXPECT_EQ(reason, "told to");
  EXPECT_FALSE(c->is_open());
  EXPECT_EQ(GetMe(*c).status(), v1::UNAVAILABLE);
  EXPECT_FALSE(c->SendRaw("x", true));
}

TEST_F(ConnectionTest, UndecodableFrameGetsAnUnmatchedReplyWithIdZero) {
  auto c = MustConnect(Options(WireEncoding::kJson));
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->SendRaw("{not json", /*binary=*/false));
  auto r = c->NextUnmatchedReply(milliseconds(2000));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 0u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
  // A frame sent with Send (no Call waiting) also lands there, with its id.
  v1::ClientFrame f;
  f.set_request_id(777);
  ASSERT_TRUE(c->Send(f));
  r = c->NextUnmatchedReply(milliseconds(2000));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 777u);
  EXPECT_EQ(r->status(), v1::INVALID_ARGUMENT);
}

TEST_F(ConnectionTest, WrongFrameTypeIsCounted) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  EXPECT_EQ(LookupUser(*c, "wrongtype").status(), v1::OK);
  EXPECT_EQ(c->frame_type_mismatches(), 1u);
}

TEST_F(ConnectionTest, ConcurrentCallsEachGetTheirOwnReply) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  constexpr int kThreads = 4, kCalls = 50;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string h = "u" + std::to_string(t) + "_" + std::to_string(i);
        v1::Reply r = LookupUser(*c, h);
        if (r.status() == v1::OK && r.profile().handle() == h) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kThreads * kCalls);
}

TEST_F(ConnectionTest, CloseSendsTheCodeAndDrainsQueuedMessages) {
  auto c = MustConnect(Options());
  ASSERT_TRUE(c);
  v1::ClientFrame f;
  f.set_request_id(5);
  f.mutable_get_me();
  ASSERT_TRUE(c->Send(f));
  c->Close(4000);
  EXPECT_FALSE(c->is_open());
  uint16_t code = 0;
  std::string reason;
  ASSERT_TRUE(c->WaitClosed(milliseconds(0), &code, &reason));
  EXPECT_EQ(code, 4000) << reason;  // the server echoes the client's code
  EXPECT_EQ(gw_.WaitClientCloseCode(milliseconds(2000)), 4000);
}

}  // namespace
}  // namespace chat::client
