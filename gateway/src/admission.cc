#include "admission.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "http_upgrade.h"
#include "proxy_protocol.h"
#include "rate_limiter.h"

namespace chat::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

bool IsTrustedProxy(const std::vector<IpRange>& trusted, const net::ip::address& peer) {
  for (const auto& r : trusted) {
    if (peer.is_v4()) {
      auto b = peer.to_v4().to_bytes();
      if (RangeContains(r, b.data(), b.size())) return true;
    } else {
      auto b = peer.to_v6().to_bytes();
      if (RangeContains(r, b.data(), b.size())) return true;
    }
  }
  return false;
}

std::string ClientKey(const net::ip::address& address, uint32_t v6_prefix_bits) {
  if (address.is_v4()) return address.to_string();
  const net::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return net::ip::make_address_v4(net::ip::v4_mapped, v6).to_string();
  const uint32_t bits = std::min<uint32_t>(v6_prefix_bits, 128);
  if (bits == 128) return v6.to_string();
  net::ip::address_v6::bytes_type b = v6.to_bytes();
  for (uint32_t bit = bits; bit < 128; ++bit) b[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return net::ip::address_v6(b).to_string() + "/" + std::to_string(bits);
}

std::string ClientKey(const proxy::Address& address, uint32_t v6_prefix_bits) {
  if (address.family == 4) return address.ToString();
  net::ip::address_v6::bytes_type b;
  std::copy(address.bytes.begin(), address.bytes.end(), b.begin());
  return ClientKey(net::ip::address(net::ip::address_v6(b)), v6_prefix_bits);
}

namespace {

// Writes the fixed 429 in one non-blocking write (it fits any fresh socket's send buffer; if it does
// not, the client gets less) and closes. Unread request bytes make the kernel answer the close with
// a reset, which the client sees after the response.
void Refuse(tcp::socket& socket, IpLimiter::Verdict verdict) {
  static const std::string kTooMany =
      "HTTP/1.1 429 Too Many Requests\r\nServer: chat-gateway\r\nContent-Type: text/plain\r\n"
      "Content-Length: 39\r\nConnection: close\r\n\r\ntoo many connections from your address\n";
  static const std::string kTooFast =
      "HTTP/1.1 429 Too Many Requests\r\nServer: chat-gateway\r\nContent-Type: text/plain\r\n"
      "Content-Length: 49\r\nConnection: close\r\n\r\nconnecting too fast from your address; back off\n";
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(verdict == IpLimiter::Verdict::kTooMany ? kTooMany : kTooFast), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void Admit(tcp::socket socket, GatewayContext& ctx, const std::string& client, std::string early,
           Clock::time_point deadline) {
  Admitted a;
  auto verdict = ctx.ip_limiter.Acquire(client, SteadyMs(), &a.ip_slot);
  if (verdict != IpLimiter::Verdict::kOk) {
    ++ctx.counters.rejected_ip;
    return Refuse(socket, verdict);
  }
  a.early = std::move(early);
  a.deadline = deadline;
  StartHttpUpgrade(std::move(socket), ctx, std::move(a));
}

// Reads a trusted balancer's PROXY header. Lives on the socket's strand; the timer closes the
// socket at the deadline, which ends the read in flight.
class ProxyHeaderReader : public std::enable_shared_from_this<ProxyHeaderReader> {
 public:
  ProxyHeaderReader(tcp::socket&& socket, GatewayContext& ctx, tcp::endpoint peer, Clock::time_point deadline)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), ctx_(ctx), peer_(peer), deadline_(deadline) {}

  tcp::socket::executor_type executor() { return socket_.get_executor(); }

  // On the socket's strand.
  void Start() {
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;  // cancelled: the header is in
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    });
    Read();
  }

 private:
  // Reads at most this much beyond what is in: a header's end is found within one chunk of it, and
  // what follows it (the client's request) is handed on, not lost.
  static constexpr size_t kChunk = 512;

  void Read() {
    const size_t have = buf_.size();
    buf_.resize(have + kChunk);
    socket_.async_read_some(net::buffer(buf_.data() + have, kChunk),
                            [self = shared_from_this(), have](boost::system::error_code ec, size_t n) {
                              self->buf_.resize(have + n);
                              if (ec) return self->Drop("closed before its PROXY header ended");
                              self->OnData();
                            });
  }

  void OnData() {
    const proxy::Header h = proxy::ParseProxyHeader(buf_);
    if (h.status == proxy::Status::kIncomplete) return Read();
    if (h.status == proxy::Status::kInvalid) return Drop(h.error);
    timer_.cancel();
    const uint32_t bits = ctx_.limits.gateway.ip_limit_v6_prefix_bits;
    const std::string client = h.has_address ? ClientKey(h.source, bits) : ClientKey(peer_.address(), bits);
    Admit(std::move(socket_), ctx_, client, buf_.substr(h.length), deadline_);
  }

  void Drop(std::string_view why) {
    ++ctx_.counters.bad_proxy_headers;
    spdlog::debug("trusted proxy {}: {}; connection dropped", peer_.address().to_string(), why);
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  GatewayContext& ctx_;
  const tcp::endpoint peer_;
  const Clock::time_point deadline_;
  std::string buf_;  // bounded: the parser refuses a header over proxy::kMaxV2Bytes
};

}  // namespace

void StartAdmission(tcp::socket socket, GatewayContext& ctx) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ctx.limits.gateway.handshake_timeout_ms);
  boost::system::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  if (!IsTrustedProxy(ctx.trusted_proxies, peer.address()))
    return Admit(std::move(socket), ctx, ClientKey(peer.address(), ctx.limits.gateway.ip_limit_v6_prefix_bits), {},
                 deadline);
  auto reader = std::make_shared<ProxyHeaderReader>(std::move(socket), ctx, peer, deadline);
  net::dispatch(reader->executor(), [reader] { reader->Start(); });
}

}  // namespace chat::gateway
