#pragma once
// Phase 1 of a connection: accepting it. Each accepted socket gets a strand of its own and goes to
// admission (admission.h: the client address and the per-address limits), then the HTTP upgrade
// (http_upgrade.h).
//
// Threads: Open on the controlling thread before the io_context runs; the accept loop runs on the
// io_context; Close may be called from any thread (it posts to the io_context).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "gateway_context.h"

namespace chat::gateway {

class Listener {
 public:
  Listener(boost::asio::io_context& ioc, GatewayContext& ctx) : ioc_(ioc), ctx_(ctx), acceptor_(ioc) {}
  // Binds and listens on host:port (port 0 picks one). Throws when it cannot.
  void Open(const std::string& hostport);
  // Accepts until Close; a failed accept (e.g. EMFILE) is logged and the loop goes on.
  void Start();
  void Close();
  uint16_t port() const { return port_; }

 private:
  void Accept();

  boost::asio::io_context& ioc_;
  GatewayContext& ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace chat::gateway
