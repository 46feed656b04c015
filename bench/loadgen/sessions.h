#pragma once
// One simulated client connection, speaking either the project's protocol (protobuf or JSON frames
// over chat.v1.*) or socket.io v4 over engine.io v4 WebSocket framing, behind one interface so the
// same scenarios drive both systems.
//
// Threading and lifetime: all methods and callbacks run on the io_context passed at creation (one
// thread per worker process). The owner keeps a session alive until its io_context stops running.
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chat/v1/client.pb.h"
#include "ws_connection.h"

namespace bench {

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/";
};
// Parses "ws://host:port/path?query".
bool ParseWsUrl(std::string_view url, Endpoint* out);

// Where a message goes. Project: conversation id; peer: user id or group id.
struct Target {
  std::string conversation;  // project
  std::string peer_user;     // socket.io "to"
  std::string peer_group;    // socket.io "group"
};

// A message received by a session (an event, not a reply).
struct Delivery {
  std::string_view body;          // the text the sender wrote
  std::string_view conversation;  // project conversation id; peer: "" (order is checked per sender)
  uint64_t server_seq = 0;        // project: per-conversation seq; peer: 0
};

class ChatSession {
 public:
  using DoneFn = std::function<void(bool ok, const std::string& error)>;
  using DeliveryFn = std::function<void(const Delivery&)>;
  using ClosedFn = std::function<void(const std::string& why)>;

  virtual ~ChatSession() = default;
  // Connects and authenticates. done(true) once the session may send.
  virtual void Open(const std::string& source_address, DoneFn done) = 0;
  // Sends one text message; ack runs once with the server's verdict (or when the connection ends).
  virtual void SendText(const Target& to, std::string client_msg_id, std::string body, DoneFn ack) = 0;
  // socket.io: joins room "g:<group>"; project: membership is server state, answers ok at once.
  virtual void JoinGroup(const std::string& group, DoneFn done) = 0;
  virtual void Close() = 0;
  virtual size_t Pending() const = 0;

  void set_on_delivery(DeliveryFn fn) { on_delivery_ = std::move(fn); }
  void set_on_closed(ClosedFn fn) { on_closed_ = std::move(fn); }

 protected:
  DeliveryFn on_delivery_;
  ClosedFn on_closed_;
};

// The project's client protocol. token empty = unauthenticated connection (for sign-up).
class ProjectSession final : public ChatSession {
 public:
  using ReplyFn = std::function<void(const chat::v1::Reply&)>;
  ProjectSession(boost::asio::io_context& io, Endpoint ep, std::string token, bool json);

  void Open(const std::string& source_address, DoneFn done) override;
  void SendText(const Target& to, std::string client_msg_id, std::string body, DoneFn ack) override;
  void JoinGroup(const std::string&, DoneFn done) override { done(true, ""); }
  void Close() override;
  size_t Pending() const override { return pending_.size(); }

  // Any request; request_id is assigned here. If the connection ends first, the reply carries
  // status UNAVAILABLE.
  void Call(chat::v1::ClientFrame frame, ReplyFn fn);

  // Awaitable form of Call for coroutines (setup, resync).
  template <typename Token>
  auto AsyncCall(chat::v1::ClientFrame frame, Token&& token) {
    return boost::asio::async_initiate<Token, void(chat::v1::Reply)>(
        [this](auto handler, chat::v1::ClientFrame f) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          Call(std::move(f), [h](const chat::v1::Reply& r) { std::move (*h)(r); });
        },
        token, std::move(frame));
  }
  template <typename Token>
  auto AsyncOpen(const std::string& source_address, Token&& token) {
    return boost::asio::async_initiate<Token, void(bool, std::string)>(
        [this, source_address](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          Open(source_address, [h](bool ok, const std::string& err) { std::move (*h)(ok, err); });
        },
        token);
  }

  // Other server events (friend requests, group changes...) are counted, not interpreted.
  uint64_t other_events() const { return other_events_; }

 private:
  void OnMessage(std::string_view data);
  void FailAll(const std::string& why);

  boost::asio::io_context& io_;
  Endpoint ep_;
  std::string token_;
  bool json_;
  std::shared_ptr<WsConnection> ws_;
  uint64_t next_request_ = 1;
  std::unordered_map<uint64_t, ReplyFn> pending_;
  chat::v1::ServerFrame scratch_;
  uint64_t other_events_ = 0;
};

// socket.io v4 (engine.io v4 over WebSocket only): "0{...}" open, "40{auth}" connect,
// "42[...]" events, "43<id>[...]" acks, "2"/"3" ping/pong.
class SocketIoSession final : public ChatSession {
 public:
  SocketIoSession(boost::asio::io_context& io, Endpoint ep, std::string user);

  void Open(const std::string& source_address, DoneFn done) override;
  void SendText(const Target& to, std::string client_msg_id, std::string body, DoneFn ack) override;
  void JoinGroup(const std::string& group, DoneFn done) override;
  void Close() override;
  size_t Pending() const override { return acks_.size(); }

 private:
  void OnMessage(std::string_view data);
  void Emit(std::string_view event_json_array_tail, DoneFn ack);
  void FailAll(const std::string& why);

  boost::asio::io_context& io_;
  Endpoint ep_;
  std::string user_;
  std::shared_ptr<WsConnection> ws_;
  DoneFn open_done_;
  uint64_t next_ack_ = 0;
  std::unordered_map<uint64_t, DoneFn> acks_;
};

}  // namespace bench
