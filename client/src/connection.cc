// The only translation unit of the client library that includes Boost.Beast (it costs ~15 s and
// ~1 GB to compile); everything else talks to it through client/connection.h.
//
// Threading: Connect() runs the resolve/connect/upgrade on the caller's thread (the I/O thread
// does not exist yet). After that, exactly one thread, io_thread_, runs ioc_ and is the only one
// that touches ws_, read_buf_ and write_queue_. Callers post closures to ioc_ and wait on cv_ for
// what the read loop publishes under mu_.
#include "client/connection.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace chat::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

// Close code reported when the connection ended without a close frame (RFC 6455 7.1.5).
constexpr uint16_t kAbnormalClosure = 1006;
// Bound on queued events/unmatched replies nobody reads; the oldest are dropped past it.
constexpr size_t kMaxQueued = 100000;

std::string PercentEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

v1::Reply StatusReply(uint64_t request_id, v1::StatusCode code, std::string message) {
  v1::Reply r;
  r.set_request_id(request_id);
  r.set_status(code);
  r.set_message(std::move(message));
  return r;
}

}  // namespace

bool ConnectOptions::ParseUrl(const std::string& url, ConnectOptions* out) {
  constexpr std::string_view kScheme = "ws://";
  if (url.size() <= kScheme.size() || url.compare(0, kScheme.size(), kScheme) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!path.empty() && path[0] == '?') path = "/" + path;
  if (authority.empty() || authority.find('@') != std::string::npos) return false;

  std::string host;
  std::string port_text;
  if (authority[0] == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return false;
      port_text = after.substr(1);
      if (port_text.empty()) return false;
    }
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return false;
    }
  }
  if (host.empty()) return false;
  unsigned long port = 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5) return false;
    for (char c : port_text)
      if (c < '0' || c > '9') return false;
    port = std::stoul(port_text);
    if (port == 0 || port > 65535) return false;
  }
  out->host = host;
  out->port = static_cast<uint16_t>(port);
  out->path = path;
  return true;
}

std::string ConnectOptions::Url() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "ws://" + h + ":" + std::to_string(port) + path;
}

class Connection::Impl {
 public:
  explicit Impl(ConnectOptions options) : options_(std::move(options)), ws_(ioc_) {}

  ~Impl() {
    // Stop the I/O thread: cancel everything on it, then let it drain and exit.
    if (io_thread_.joinable()) {
      net::post(ioc_, [this] {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
      });
      work_.reset();
      io_thread_.join();
    }
  }

  // Caller's thread, before Start(). Returns false with *error / *http_status on failure.
  bool Handshake(std::string* error, int* http_status) {
    tcp::resolver resolver(ioc_);
    websocket::response_type res;
    bool done = false;
    beast::error_code result;
    std::string stage = "resolve";

    std::string offered;
    if (!options_.offer_no_subprotocol) {
      if (options_.subprotocols_override.empty()) {
        offered = std::string(SubprotocolName(options_.encoding));
      } else {
        for (const auto& p : options_.subprotocols_override) {
          if (!offered.empty()) offered += ", ";
          offered += p;
        }
      }
    }
    std::string target = options_.path.empty() ? "/" : options_.path;
    if (!options_.token.empty() && options_.token_in_query) {
      target += (target.find('?') == std::string::npos ? "?" : "&");
      target += "access_token=" + PercentEncode(options_.token);
    }
    std::string authorization = options_.token.empty() || options_.token_in_query ? "" : "Bearer " + options_.token;
    ws_.set_option(websocket::stream_base::decorator([offered, authorization](websocket::request_type& req) {
      req.set(http::field::user_agent, "chat-client/1");
      if (!offered.empty()) req.set(http::field::sec_websocket_protocol, offered);
      if (!authorization.empty()) req.set(http::field::authorization, authorization);
    }));
    ws_.read_message_max(kMaxIncomingMessageBytes);
    std::string host_header = options_.host.find(':') != std::string::npos
                                  ? "[" + options_.host + "]:" + std::to_string(options_.port)
                                  : options_.host + ":" + std::to_string(options_.port);

    resolver.async_resolve(options_.host, std::to_string(options_.port),
                           [&](beast::error_code ec, tcp::resolver::results_type results) {
                             if (ec) {
                               done = true;
                               result = ec;
                               return;
                             }
                             stage = "connect";
                             auto& tcp_stream = beast::get_lowest_layer(ws_);
                             tcp_stream.expires_after(options_.timeout);
                             auto connected = [&](beast::error_code ec) {
                               if (ec) {
                                 done = true;
                                 result = ec;
                                 return;
                               }
                               stage = "upgrade";
                               ws_.async_handshake(res, host_header, target, [&](beast::error_code ec) {
                                 done = true;
                                 result = ec;
                               });
                             };
                             if (options_.source_address.empty()) {
                               tcp_stream.async_connect(
                                   results, [connected](beast::error_code ec, const tcp::endpoint&) { connected(ec); });
                               return;
                             }
                             // From a chosen source: bind, then the first resolved address only.
                             const tcp::endpoint to = *results.begin();
                             auto from = net::ip::make_address(options_.source_address, ec);
                             if (!ec) tcp_stream.socket().open(to.protocol(), ec);
                             if (!ec) tcp_stream.socket().bind(tcp::endpoint(from, 0), ec);
                             if (ec) return connected(ec);
                             tcp_stream.async_connect(to, connected);
                           });
    ioc_.run_for(options_.timeout);
    if (!done) {
      resolver.cancel();
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      ioc_.restart();
      ioc_.run();  // completes the cancelled handlers while their captures are alive
      *error = "timed out after " + std::to_string(options_.timeout.count()) + " ms (" + stage + ") connecting to " +
               options_.Url();
      return false;
    }
    if (result) {
      if (result == websocket::error::upgrade_declined) {
        *http_status = static_cast<int>(res.result_int());
        std::string body = res.body().substr(0, 200);
        while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
        *error = "upgrade rejected with HTTP " + std::to_string(res.result_int()) + " " + std::string(res.reason()) +
                 (body.empty() ? "" : ": " + body);
      } else {
        *error = stage + " to " + options_.Url() + " failed: " + result.message();
      }
      return false;
    }
    *http_status = static_cast<int>(res.result_int());
    subprotocol_ = std::string(res[http::field::sec_websocket_protocol]);
    // The gateway answers with the subprotocol it chose; none means JSON (its default).
    encoding_ = subprotocol_ == kSubprotocolProto ? WireEncoding::kProto : WireEncoding::kJson;

    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = options_.timeout;  // also bounds the close handshake
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    return true;
  }

  void Start() {
    ioc_.restart();
    work_.emplace(net::make_work_guard(ioc_));
    net::post(ioc_, [this] { DoRead(); });
    io_thread_ = std::thread([this] { ioc_.run(); });
  }

  // ---- caller side -------------------------------------------------------------------------

  bool Enqueue(std::string bytes, bool binary) {
    {
      std::lock_guard lock(mu_);
      if (closed_ || close_requested_) return false;
    }
    auto data = std::make_shared<std::string>(std::move(bytes));
    net::post(ioc_, [this, data, binary] {
      write_queue_.push_back(WriteItem{data, binary, false, 0});
      if (!writing_) DoWrite();
    });
    return true;
  }

  v1::Reply Call(v1::ClientFrame frame, std::chrono::milliseconds timeout) {
    if (frame.request_id() == 0) frame.set_request_id(next_id_.fetch_add(1));
    const uint64_t id = frame.request_id();
    std::unique_lock lock(mu_);
    if (closed_) return StatusReply(id, v1::UNAVAILABLE, ClosedMessageLocked());
    if (close_requested_) return StatusReply(id, v1::UNAVAILABLE, "connection is closing");
    waiting_[id];  // registered before sending, so the reply cannot slip past
    abandoned_.erase(id);
    lock.unlock();

    std::string bytes = EncodeClientFrame(frame, encoding_);
    bool binary = encoding_ == WireEncoding::kProto;
    auto data = std::make_shared<std::string>(std::move(bytes));
    net::post(ioc_, [this, data, binary] {
      write_queue_.push_back(WriteItem{data, binary, false, 0});
      if (!writing_) DoWrite();
    });

    lock.lock();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto has_reply = [&] { return waiting_[id].has_value() || closed_; };
    cv_.wait_until(lock, deadline, has_reply);
    auto it = waiting_.find(id);
    if (it->second.has_value()) {
      v1::Reply reply = std::move(*it->second);
      waiting_.erase(it);
      return reply;
    }
    waiting_.erase(it);
    if (closed_) return StatusReply(id, v1::UNAVAILABLE, ClosedMessageLocked());
    abandoned_.insert(id);
    return StatusReply(
        id, v1::DEADLINE_EXCEEDED,
        "no reply to request " + std::to_string(id) + " within " + std::to_string(timeout.count()) + " ms");
  }

  std::optional<v1::Event> WaitEvent(const std::function<bool(const v1::Event&)>* pred,
                                     std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t scanned = 0;  // events_[0, scanned) are known not to match
    for (;;) {
      for (; scanned < events_.size(); ++scanned) {
        if (pred == nullptr || (*pred)(events_[scanned])) {
          v1::Event e = std::move(events_[scanned]);
          events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(scanned));
          return e;
        }
      }
      if (closed_) return std::nullopt;
      // Front drops (queue overflow) shift indexes; rescanning from 0 is then merely slower.
      uint64_t dropped_before = dropped_events_;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && scanned >= events_.size()) {
        return std::nullopt;
      }
      if (dropped_events_ != dropped_before) scanned = 0;
    }
  }

  size_t PendingEvents() const {
    std::lock_guard lock(mu_);
    return events_.size();
  }

  std::optional<v1::Reply> NextUnmatchedReply(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !unmatched_.empty() || closed_; });
    if (unmatched_.empty()) return std::nullopt;
    v1::Reply r = std::move(unmatched_.front());
    unmatched_.pop_front();
    return r;
  }

  bool WaitClosed(std::chrono::milliseconds timeout, uint16_t* code, std::string* reason) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return closed_; })) return false;
    if (code) *code = close_code_;
    if (reason) *reason = close_reason_;
    return true;
  }

  bool is_open() const {
    std::lock_guard lock(mu_);
    return !closed_;
  }

  void Close(uint16_t code) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      if (!close_requested_) {
        close_requested_ = true;
        net::post(ioc_, [this, code] {
          write_queue_.push_back(WriteItem{nullptr, false, true, code});
          if (!writing_) DoWrite();
        });
      }
    }
    if (!WaitClosed(options_.timeout, nullptr, nullptr)) {
      // The server did not finish the close handshake in time: drop the TCP connection.
      net::post(ioc_, [this] {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
      });
      WaitClosed(options_.timeout, nullptr, nullptr);
    }
  }

  const ConnectOptions& options() const { return options_; }
  WireEncoding encoding() const { return encoding_; }
  const std::string& subprotocol() const { return subprotocol_; }
  uint64_t mismatches() const { return mismatches_.load(); }
  uint64_t undecodable() const { return undecodable_.load(); }

 private:
  struct WriteItem {
    std::shared_ptr<std::string> data;  // null for a close
    bool binary = false;
    bool close = false;
    uint16_t close_code = 0;
  };

  // mu_ held.
  std::string ClosedMessageLocked() const {
    return "connection closed (code " + std::to_string(close_code_) +
           (close_reason_.empty() ? "" : ": " + close_reason_) + ")";
  }

  // ---- I/O thread only ---------------------------------------------------------------------

  void DoRead() {
    ws_.async_read(read_buf_, [this](beast::error_code ec, size_t) { OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    // Beast aborts the pending read while our own close handshake runs; its handler finishes.
    if (ec == net::error::operation_aborted && close_in_flight_) return;
    if (ec) return Finish(ec);
    const bool text = ws_.got_text();
    std::string data = beast::buffers_to_string(read_buf_.data());
    read_buf_.consume(read_buf_.size());
    if (options_.on_received) options_.on_received(data);
    if (text != (encoding_ == WireEncoding::kJson)) ++mismatches_;
    v1::ServerFrame frame;
    std::string error;
    if (!DecodeServerFrame(data, encoding_, &frame, &error)) {
      ++undecodable_;
      return DoRead();
    }
    {
      std::lock_guard lock(mu_);
      if (frame.has_reply()) {
        uint64_t id = frame.reply().request_id();
        auto it = waiting_.find(id);
        if (id != 0 && it != waiting_.end() && !it->second.has_value()) {
          it->second = std::move(*frame.mutable_reply());
        } else if (id != 0 && abandoned_.erase(id) > 0) {
          // Its Call already returned DEADLINE_EXCEEDED; documented as discarded.
        } else {
          if (unmatched_.size() >= kMaxQueued) unmatched_.pop_front();
          unmatched_.push_back(std::move(*frame.mutable_reply()));
        }
      } else if (frame.has_event()) {
        if (events_.size() >= kMaxQueued) {
          events_.pop_front();
          ++dropped_events_;
        }
        events_.push_back(std::move(*frame.mutable_event()));
      }
    }
    cv_.notify_all();
    DoRead();
  }

  void DoWrite() {
    if (write_queue_.empty() || io_closed_) {
      write_queue_.clear();
      writing_ = false;
      return;
    }
    writing_ = true;
    WriteItem item = std::move(write_queue_.front());
    write_queue_.pop_front();
    if (item.close) {
      io_closed_ = true;  // nothing may be written after a close frame
      close_in_flight_ = true;
      ws_.async_close(websocket::close_reason(item.close_code), [this](beast::error_code ec) {
        close_in_flight_ = false;
        writing_ = false;
        write_queue_.clear();
        // Success means the server answered with its close frame (ws_.reason()).
        Finish(ec ? ec : beast::error_code(websocket::error::closed));
      });
      return;
    }
    ws_.binary(item.binary);
    ws_.async_write(net::buffer(*item.data), [this, keep = item.data](beast::error_code ec, size_t) {
      if (ec) {
        writing_ = false;
        write_queue_.clear();
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;  // the read fails next and calls Finish
      }
      DoWrite();
    });
  }

  // Publishes the end of the connection once (the read loop and our close may both end it).
  void Finish(beast::error_code ec) {
    if (finished_) return;
    finished_ = true;
    io_closed_ = true;
    uint16_t code = kAbnormalClosure;
    std::string reason;
    if (ec == websocket::error::closed) {
      code = static_cast<uint16_t>(ws_.reason().code);
      reason = std::string(ws_.reason().reason.c_str());
    } else {
      reason = ec.message();
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    }
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      close_code_ = code;
      close_reason_ = std::move(reason);
    }
    cv_.notify_all();
  }

  const ConnectOptions options_;
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;  // I/O thread only (after Handshake)
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread io_thread_;

  // Set by Handshake() before io_thread_ starts; read-only afterwards.
  WireEncoding encoding_ = WireEncoding::kJson;
  std::string subprotocol_;

  // I/O thread only.
  beast::flat_buffer read_buf_;
  std::deque<WriteItem> write_queue_;
  bool writing_ = false;
  bool io_closed_ = false;        // no more writes
  bool close_in_flight_ = false;  // our async_close is running
  bool finished_ = false;         // Finish ran

  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> mismatches_{0};
  std::atomic<uint64_t> undecodable_{0};

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool close_requested_ = false;
  uint16_t close_code_ = 0;
  std::string close_reason_;
  std::unordered_map<uint64_t, std::optional<v1::Reply>> waiting_;  // outstanding Calls
  std::unordered_set<uint64_t> abandoned_;                          // timed-out Calls
  std::deque<v1::Reply> unmatched_;
  std::deque<v1::Event> events_;
  uint64_t dropped_events_ = 0;
};

// ---- Connection ------------------------------------------------------------------------------

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() {
  if (impl_ && impl_->is_open()) impl_->Close(1000);
}

std::unique_ptr<Connection> Connection::Connect(const ConnectOptions& options, std::string* error, int* http_status) {
  std::string local_error;
  int local_status = 0;
  auto impl = std::make_unique<Impl>(options);
  bool ok = impl->Handshake(&local_error, &local_status);
  if (error) *error = local_error;
  if (http_status) *http_status = local_status;
  if (!ok) return nullptr;
  impl->Start();
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

v1::Reply Connection::Call(v1::ClientFrame frame, std::chrono::milliseconds timeout) {
  return impl_->Call(std::move(frame), timeout);
}
v1::Reply Connection::Call(v1::ClientFrame frame) { return impl_->Call(std::move(frame), impl_->options().timeout); }
std::optional<v1::Event> Connection::NextEvent(std::chrono::milliseconds timeout) {
  return impl_->WaitEvent(nullptr, timeout);
}
std::optional<v1::Event> Connection::WaitEvent(const std::function<bool(const v1::Event&)>& pred,
                                               std::chrono::milliseconds timeout) {
  return impl_->WaitEvent(&pred, timeout);
}
size_t Connection::PendingEvents() const { return impl_->PendingEvents(); }
std::optional<v1::Reply> Connection::NextUnmatchedReply(std::chrono::milliseconds timeout) {
  return impl_->NextUnmatchedReply(timeout);
}
bool Connection::SendRaw(std::string bytes, bool binary) { return impl_->Enqueue(std::move(bytes), binary); }
bool Connection::Send(const v1::ClientFrame& frame) {
  return impl_->Enqueue(EncodeClientFrame(frame, impl_->encoding()), impl_->encoding() == WireEncoding::kProto);
}
bool Connection::WaitClosed(std::chrono::milliseconds timeout, uint16_t* close_code, std::string* reason) {
  return impl_->WaitClosed(timeout, close_code, reason);
}
bool Connection::is_open() const { return impl_->is_open(); }
void Connection::Close(uint16_t code) { impl_->Close(code); }
WireEncoding Connection::encoding() const { return impl_->encoding(); }
std::string Connection::negotiated_subprotocol() const { return impl_->subprotocol(); }
const ConnectOptions& Connection::options() const { return impl_->options(); }
uint64_t Connection::frame_type_mismatches() const { return impl_->mismatches(); }
uint64_t Connection::undecodable_messages() const { return impl_->undecodable(); }

}  // namespace chat::client
