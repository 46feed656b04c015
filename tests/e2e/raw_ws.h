#pragma once
// RawWs: a WebSocket client written byte by byte on a blocking socket, for what a well-behaved
// client library cannot send: unmasked frames, bare pings, fragments, silence towards pings, a
// close of its own. Reads give up after 10 s (SO_RCVTIMEO), so a server that never answers fails
// the test instead of hanging it. One thread.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <string>

#include "client/connection.h"

namespace chat::e2e {
class RawWs {
 public:
  // `rcvbuf` > 0 shrinks the receive buffer before connecting, so the server's writes stall early.
  explicit RawWs(const client::ConnectOptions& o, int rcvbuf = 0) : socket_(ioc_) {
    boost::asio::ip::tcp::resolver resolver(ioc_);
    auto endpoint = *resolver.resolve(o.host, std::to_string(o.port)).begin();
    socket_.open(endpoint.endpoint().protocol());
    if (rcvbuf > 0) socket_.set_option(boost::asio::socket_base::receive_buffer_size(rcvbuf));
    socket_.connect(endpoint);
    timeval tv{10, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // Sends an upgrade request with `headers` (each ending in CRLF) and returns the response head.
  std::string Upgrade(const std::string& target, const std::string& headers) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
    boost::asio::write(socket_, boost::asio::buffer(req));
    boost::asio::read_until(socket_, in_, "\r\n\r\n");
    std::string all(boost::asio::buffers_begin(in_.data()), boost::asio::buffers_end(in_.data()));
    const size_t end = all.find("\r\n\r\n") + 4;
    in_.consume(end);
    return all.substr(0, end);
  }

  static std::string StandardHeaders(const std::string& token) {
    return "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat.v1.proto\r\n"
           "Authorization: Bearer " +
           token + "\r\n";
  }

  void SendFrame(uint8_t first_byte, const std::string& payload, bool masked = true) {
    std::string f(1, static_cast<char>(first_byte));
    const uint8_t m = masked ? 0x80 : 0;
    if (payload.size() < 126) {
      f.push_back(static_cast<char>(m | payload.size()));
    } else {
      f.push_back(static_cast<char>(m | 126));
      f.push_back(static_cast<char>(payload.size() >> 8));
      f.push_back(static_cast<char>(payload.size()));
    }
    const char key[4] = {'\x11', '\x22', '\x33', '\x44'};
    if (masked) f.append(key, 4);
    for (size_t i = 0; i < payload.size(); ++i)
      f.push_back(masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i]);
    boost::asio::write(socket_, boost::asio::buffer(f));
  }

  struct Frame {
    uint8_t opcode = 0;
    bool fin = false;
    std::string payload;
  };
  enum class End { kNone, kEof, kTimeout, kError };
  // Why the last ReadFrame returned nullopt.
  End end() const { return end_; }

  // The next server frame; nullopt on EOF, reset or timeout (see end()).
  std::optional<Frame> ReadFrame() {
    boost::system::error_code ec;
    if (!Fill(2, ec)) return std::nullopt;
    Frame f;
    auto byte = [&](size_t i) { return static_cast<uint8_t>(Peek()[i]); };
    f.fin = byte(0) & 0x80;
    f.opcode = byte(0) & 0x0F;
    EXPECT_FALSE(byte(1) & 0x80) << "server frames must not be masked";
    size_t len = byte(1) & 0x7F, hdr = 2;
    if (len == 126) {
      if (!Fill(4, ec)) return std::nullopt;
      len = (size_t(byte(2)) << 8) | byte(3);
      hdr = 4;
    } else if (len == 127) {
      if (!Fill(10, ec)) return std::nullopt;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | byte(2 + i);
      hdr = 10;
    }
    if (!Fill(hdr + len, ec)) return std::nullopt;
    f.payload = Peek().substr(hdr, len);
    in_.consume(hdr + len);
    return f;
  }

  // True once the server has closed the TCP connection (EOF), within the read timeout.
  bool ReadsEof() {
    char c;
    boost::system::error_code ec;
    for (;;) {
      socket_.read_some(boost::asio::buffer(&c, 1), ec);
      if (ec) return ec == boost::asio::error::eof;
    }
  }

 private:
  std::string Peek() const {
    return std::string(boost::asio::buffers_begin(in_.data()), boost::asio::buffers_end(in_.data()));
  }
  bool Fill(size_t n, boost::system::error_code& ec) {
    if (in_.size() >= n) return true;
    boost::asio::read(socket_, in_, boost::asio::transfer_at_least(n - in_.size()), ec);
    if (!ec || in_.size() >= n) return true;
    end_ = ec == boost::asio::error::eof                                                  ? End::kEof
           : ec == boost::asio::error::would_block || ec == boost::asio::error::try_again ? End::kTimeout
                                                                                          : End::kError;
    return false;
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::streambuf in_;
  End end_ = End::kNone;
};

inline uint16_t CloseCodeOf(const RawWs::Frame& f) {
  return f.payload.size() >= 2 ? static_cast<uint16_t>((uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1])) : 0;
}

}  // namespace chat::e2e
