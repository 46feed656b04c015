#pragma once
// A client WebSocket connection behind a plain interface, so that only ws_connection.cc pays for
// Boost.Beast. Plain ws:// only (the benchmark runs on loopback).
//
// Threading: every method must be called on the io_context the connection was created with, and
// every callback runs there. The load generator runs one io_context per worker process, on one
// thread, so nothing here locks.
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace bench {

struct WsOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string target = "/";          // path and query of the upgrade request
  std::string subprotocol;           // Sec-WebSocket-Protocol offer; empty = none
  std::string bearer;                // Authorization: Bearer <token>; empty = none
  std::string source_address;        // local address to bind (e.g. 127.0.0.7); empty = any
  bool binary = false;               // frame type used by Send()
  int handshake_timeout_ms = 10000;  // TCP connect + upgrade
};

class WsConnection {
 public:
  // Called with each complete message; `binary` tells the frame type.
  using MessageFn = std::function<void(std::string_view data, bool binary)>;
  // Called once when the connection ends after a successful Connect (error or close).
  using CloseFn = std::function<void(const boost::system::error_code& ec, int close_code)>;
  // Called once with the outcome of Connect; http_status is the upgrade answer when known.
  using ConnectFn = std::function<void(const boost::system::error_code& ec, int http_status)>;

  virtual ~WsConnection() = default;
  static std::shared_ptr<WsConnection> Create(boost::asio::io_context& io, WsOptions options);

  virtual void Connect(const std::string& resolved_ip, ConnectFn done) = 0;
  virtual void SetHandlers(MessageFn on_message, CloseFn on_close) = 0;
  // Queues one message; writes go out one at a time in call order. Unbounded queue: the load
  // generator bounds what it has in flight itself. Queued data after Close() is dropped.
  virtual void Send(std::string data) = 0;
  virtual size_t QueuedMessages() const = 0;
  // Sends a close frame (code 1000) and lets the read loop end; the CloseFn still runs.
  virtual void Close() = 0;
};

}  // namespace bench
