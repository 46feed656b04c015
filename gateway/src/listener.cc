#include "listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "admission.h"

namespace chat::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
tcp::endpoint ParseEndpoint(const std::string& hostport) {
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("listen address must be host:port: " + hostport);
  return tcp::endpoint(net::ip::make_address(hostport.substr(0, colon)),
                       static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
}
}  // namespace

void Listener::Open(const std::string& hostport) {
  auto ep = ParseEndpoint(hostport);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void Listener::Start() { Accept(); }

void Listener::Close() {
  net::post(ioc_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

void Listener::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      spdlog::warn("accept failed: {}", ec.message());  // e.g. EMFILE: keep accepting
    } else {
      socket.set_option(tcp::no_delay(true));
      StartAdmission(std::move(socket), ctx_);
    }
    Accept();
  });
}

}  // namespace chat::gateway
