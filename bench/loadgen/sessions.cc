#include "sessions.h"

#include <charconv>

#include "common/codec.h"

namespace bench {

namespace v1 = chat::v1;

bool ParseWsUrl(std::string_view url, Endpoint* out) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  out->path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) return false;
  out->host = std::string(hostport.substr(0, colon));
  if (out->host == "localhost") out->host = "127.0.0.1";
  unsigned port = 0;
  auto p = hostport.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || port == 0 || port > 65535) return false;
  out->port = static_cast<uint16_t>(port);
  return true;
}

// ---------------------------------------------------------------------------------------------
// ProjectSession

ProjectSession::ProjectSession(boost::asio::io_context& io, Endpoint ep, std::string token, bool json)
    : io_(io), ep_(std::move(ep)), token_(std::move(token)), json_(json) {}

void ProjectSession::Open(const std::string& source_address, DoneFn done) {
  WsOptions o;
  o.host = ep_.host;
  o.port = ep_.port;
  o.target = ep_.path;
  o.subprotocol = std::string(json_ ? chat::kSubprotocolJson : chat::kSubprotocolProto);
  o.bearer = token_;
  o.source_address = source_address;
  o.binary = !json_;
  ws_ = WsConnection::Create(io_, std::move(o));
  ws_->SetHandlers([this](std::string_view data, bool) { OnMessage(data); },
                   [this](const boost::system::error_code& ec, int code) {
                     std::string why = "closed " + std::to_string(code) + " " + ec.message();
                     FailAll(why);
                     if (on_closed_) on_closed_(why);
                   });
  ws_->Connect(ep_.host, [done = std::move(done)](const boost::system::error_code& ec, int status) {
    if (ec) return done(false, "connect: " + ec.message() + " http " + std::to_string(status));
    done(true, "");
  });
}

void ProjectSession::Call(v1::ClientFrame frame, ReplyFn fn) {
  uint64_t id = next_request_++;
  frame.set_request_id(id);
  if (!ws_) {
    v1::Reply r;
    r.set_status(v1::UNAVAILABLE);
    r.set_message("not connected");
    return fn(r);
  }
  pending_.emplace(id, std::move(fn));
  ws_->Send(chat::EncodeClientFrame(frame, json_ ? chat::WireEncoding::kJson : chat::WireEncoding::kProto));
}

void ProjectSession::SendText(const Target& to, std::string client_msg_id, std::string body, DoneFn ack) {
  v1::ClientFrame f;
  auto* s = f.mutable_send_message();
  s->set_conversation_id(to.conversation);
  s->set_client_msg_id(std::move(client_msg_id));
  s->mutable_content()->mutable_text()->set_text(std::move(body));
  Call(std::move(f), [ack = std::move(ack)](const v1::Reply& r) {
    if (r.status() == v1::OK) return ack(true, "");
    ack(false, v1::StatusCode_Name(r.status()) + ": " + r.message());
  });
}

void ProjectSession::OnMessage(std::string_view data) {
  std::string err;
  if (!chat::DecodeServerFrame(data, json_ ? chat::WireEncoding::kJson : chat::WireEncoding::kProto, &scratch_, &err)) {
    ++other_events_;
    return;
  }
  if (scratch_.has_reply()) {
    auto it = pending_.find(scratch_.reply().request_id());
    if (it == pending_.end()) return;
    ReplyFn fn = std::move(it->second);
    pending_.erase(it);
    fn(scratch_.reply());
    return;
  }
  if (scratch_.has_event() && scratch_.event().has_message()) {
    const v1::Message& m = scratch_.event().message().message();
    Delivery d;
    d.body = m.content().text().text();
    d.conversation = m.conversation_id();
    d.server_seq = m.seq();
    if (on_delivery_) on_delivery_(d);
    return;
  }
  ++other_events_;
}

void ProjectSession::FailAll(const std::string& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  v1::Reply r;
  r.set_status(v1::UNAVAILABLE);
  r.set_message(why);
  for (auto& [id, fn] : pending) fn(r);
}

void ProjectSession::Close() {
  if (ws_) ws_->Close();
}

// ---------------------------------------------------------------------------------------------
// SocketIoSession

SocketIoSession::SocketIoSession(boost::asio::io_context& io, Endpoint ep, std::string user)
    : io_(io), ep_(std::move(ep)), user_(std::move(user)) {}

void SocketIoSession::Open(const std::string& source_address, DoneFn done) {
  WsOptions o;
  o.host = ep_.host;
  o.port = ep_.port;
  o.target = ep_.path;
  o.source_address = source_address;
  o.binary = false;
  ws_ = WsConnection::Create(io_, std::move(o));
  open_done_ = std::move(done);
  ws_->SetHandlers([this](std::string_view data, bool) { OnMessage(data); },
                   [this](const boost::system::error_code& ec, int code) {
                     std::string why = "closed " + std::to_string(code) + " " + ec.message();
                     if (auto fn = std::move(open_done_)) fn(false, why);
                     FailAll(why);
                     if (on_closed_) on_closed_(why);
                   });
  ws_->Connect(ep_.host, [this](const boost::system::error_code& ec, int status) {
    if (ec) {
      if (auto fn = std::move(open_done_)) fn(false, "connect: " + ec.message() + " http " + std::to_string(status));
    }
    // Otherwise wait for the engine.io open packet.
  });
}

namespace {
// Finds the string value of "key":"..." (no escapes: the load generator writes plain ASCII).
std::string_view JsonStringField(std::string_view s, std::string_view quoted_key_colon) {
  size_t p = s.find(quoted_key_colon);
  if (p == std::string_view::npos) return {};
  p += quoted_key_colon.size();
  if (p >= s.size() || s[p] != '"') return {};
  size_t e = s.find('"', p + 1);
  if (e == std::string_view::npos) return {};
  return s.substr(p + 1, e - p - 1);
}
}  // namespace

void SocketIoSession::OnMessage(std::string_view data) {
  if (data.empty()) return;
  char type = data[0];
  if (type == '2') {  // engine.io ping -> pong
    ws_->Send("3");
    return;
  }
  if (type == '0') {  // engine.io open: connect to namespace "/" with handshake auth
    ws_->Send("40{\"user\":\"" + user_ + "\"}");
    return;
  }
  if (type == '1') return;  // engine.io close; the socket close follows
  if (type != '4' || data.size() < 2) return;
  char packet = data[1];
  std::string_view rest = data.substr(2);
  switch (packet) {
    case '0':  // CONNECT ok
      if (auto fn = std::move(open_done_)) fn(true, "");
      return;
    case '4':  // CONNECT_ERROR
      if (auto fn = std::move(open_done_)) fn(false, "connect_error " + std::string(rest));
      return;
    case '2': {  // EVENT ["msg",{...}]
      if (rest.substr(0, 7) != "[\"msg\",") return;
      Delivery d;
      d.body = JsonStringField(rest, "\"body\":");
      if (on_delivery_) on_delivery_(d);
      return;
    }
    case '3': {  // ACK <id>[...]
      uint64_t id = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
      if (ec != std::errc()) return;
      auto it = acks_.find(id);
      if (it == acks_.end()) return;
      DoneFn fn = std::move(it->second);
      acks_.erase(it);
      bool ok = std::string_view(ptr, rest.data() + rest.size() - ptr).find("\"ok\":true") != std::string_view::npos;
      fn(ok, ok ? "" : std::string(rest));
      return;
    }
    default:
      return;
  }
}

void SocketIoSession::Emit(std::string_view array, DoneFn ack) {
  if (!ws_) return ack(false, "not connected");
  uint64_t id = next_ack_++;
  acks_.emplace(id, std::move(ack));
  std::string packet;
  packet.reserve(array.size() + 24);
  packet.append("42");
  packet.append(std::to_string(id));
  packet.append(array);
  ws_->Send(std::move(packet));
}

void SocketIoSession::SendText(const Target& to, std::string client_msg_id, std::string body, DoneFn ack) {
  std::string a;
  a.reserve(body.size() + 96);
  a.append("[\"send\",{");
  if (!to.peer_group.empty()) {
    a.append("\"group\":\"").append(to.peer_group).append("\"");
  } else {
    a.append("\"to\":\"").append(to.peer_user).append("\"");
  }
  a.append(",\"id\":\"").append(client_msg_id).append("\",\"body\":\"").append(body).append("\",\"t\":0}]");
  Emit(a, std::move(ack));
}

void SocketIoSession::JoinGroup(const std::string& group, DoneFn done) {
  Emit("[\"join\",{\"group\":\"" + group + "\"}]", std::move(done));
}

void SocketIoSession::FailAll(const std::string& why) {
  auto acks = std::move(acks_);
  acks_.clear();
  for (auto& [id, fn] : acks) fn(false, why);
}

void SocketIoSession::Close() {
  if (ws_) ws_->Close();
}

}  // namespace bench
