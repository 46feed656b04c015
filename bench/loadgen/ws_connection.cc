// The only translation unit that instantiates Boost.Beast (see toolchain.md: it dominates compile time).
#include "ws_connection.h"

#include <netinet/in.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

namespace bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
// Lets many connections share a bound source address: the port is picked at connect() time per
// 4-tuple instead of being reserved at bind() time.
using BindNoPort = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

class BeastConnection final : public WsConnection, public std::enable_shared_from_this<BeastConnection> {
 public:
  BeastConnection(asio::io_context& io, WsOptions options) : ws_(io), options_(std::move(options)) {}

  void SetHandlers(MessageFn on_message, CloseFn on_close) override {
    on_message_ = std::move(on_message);
    on_close_ = std::move(on_close);
  }

  void Connect(const std::string& resolved_ip, ConnectFn done) override {
    connect_done_ = std::move(done);
    boost::system::error_code ec;
    auto& sock = beast::get_lowest_layer(ws_).socket();
    sock.open(tcp::v4(), ec);
    if (!ec && !options_.source_address.empty()) {
      sock.set_option(BindNoPort(true), ec);
      ec.clear();  // an old kernel without the option still works, with fewer ports
      sock.bind(tcp::endpoint(asio::ip::make_address(options_.source_address, ec), 0), ec);
    }
    if (ec) return FailConnect(ec, 0);
    tcp::endpoint ep(asio::ip::make_address(resolved_ip, ec), options_.port);
    if (ec) return FailConnect(ec, 0);
    beast::get_lowest_layer(ws_).expires_after(std::chrono::milliseconds(options_.handshake_timeout_ms));
    beast::get_lowest_layer(ws_).async_connect(
        ep, [self = shared_from_this()](const boost::system::error_code& ec) { self->OnTcp(ec); });
  }

  void Send(std::string data) override {
    if (closed_) return;
    queue_.push_back(std::move(data));
    if (queue_.size() == 1 && open_) WriteNext();
  }

  size_t QueuedMessages() const override { return queue_.size(); }

  void Close() override {
    if (closed_ || !open_) return;
    closed_ = true;
    queue_.clear();
    if (writing_) return;  // the close goes out after the current write completes
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](const boost::system::error_code&) {});
  }

 private:
  void FailConnect(const boost::system::error_code& ec, int status) {
    if (auto fn = std::move(connect_done_)) fn(ec, status);
  }

  void OnTcp(const boost::system::error_code& ec) {
    if (ec) return FailConnect(ec, 0);
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
    ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      if (!options_.subprotocol.empty()) req.set(beast::http::field::sec_websocket_protocol, options_.subprotocol);
      if (!options_.bearer.empty()) req.set(beast::http::field::authorization, "Bearer " + options_.bearer);
      req.set(beast::http::field::user_agent, "chat-loadgen");
    }));
    ws_.read_message_max(64 * 1024 * 1024);
    ws_.async_handshake(response_, options_.host + ":" + std::to_string(options_.port), options_.target,
                        [self = shared_from_this()](const boost::system::error_code& ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(const boost::system::error_code& ec) {
    int status = static_cast<int>(response_.result_int());
    response_ = {};
    if (ec) return FailConnect(ec, status);
    beast::get_lowest_layer(ws_).expires_never();
    // Server pings answered by Beast; a dead server shows up as a read error.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.binary(options_.binary);
    open_ = true;
    if (auto fn = std::move(connect_done_)) fn({}, status);
    ReadNext();
    if (!queue_.empty() && !writing_) WriteNext();
  }

  void ReadNext() {
    ws_.async_read(buffer_,
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(const boost::system::error_code& ec) {
    if (ec) {
      open_ = false;
      closed_ = true;
      queue_.clear();
      int code = ws_.reason().code;
      if (auto fn = std::move(on_close_)) fn(ec, code);
      on_message_ = nullptr;
      return;
    }
    auto data = buffer_.cdata();
    if (on_message_)
      on_message_(std::string_view(static_cast<const char*>(data.data()), data.size()), ws_.got_binary());
    buffer_.consume(buffer_.size());
    ReadNext();
  }

  void WriteNext() {
    writing_ = true;
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(const boost::system::error_code& ec) {
    writing_ = false;
    if (ec) {
      queue_.clear();
      return;  // the read side reports the failure
    }
    if (closed_) {
      ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](const boost::system::error_code&) {});
      return;
    }
    queue_.pop_front();
    if (!queue_.empty()) WriteNext();
  }

  websocket::stream<beast::tcp_stream> ws_;
  WsOptions options_;
  beast::flat_buffer buffer_;
  websocket::response_type response_;
  std::deque<std::string> queue_;
  MessageFn on_message_;
  CloseFn on_close_;
  ConnectFn connect_done_;
  bool open_ = false;
  bool closed_ = false;
  bool writing_ = false;
};

}  // namespace

std::shared_ptr<WsConnection> WsConnection::Create(asio::io_context& io, WsOptions options) {
  return std::make_shared<BeastConnection>(io, std::move(options));
}

}  // namespace bench
