#include "hub.h"

#include <google/protobuf/io/coded_stream.h>
#include <spdlog/spdlog.h>

#include "chat/internal/services.pb.h"

namespace chat::gateway {

std::shared_ptr<const std::string> SharedEvent::Frame(WireEncoding enc) const {
  auto self = shared_from_this();
  if (enc == WireEncoding::kProto) {
    // ServerFrame{event = 2}: the event bytes behind a field-2 length-delimited tag, no re-encode.
    std::call_once(proto_once_, [&] {
      proto_frame_.reserve(event_bytes_.size() + 6);
      proto_frame_.push_back(static_cast<char>((2 << 3) | 2));
      uint64_t n = event_bytes_.size();
      while (n >= 0x80) {
        proto_frame_.push_back(static_cast<char>((n & 0x7F) | 0x80));
        n >>= 7;
      }
      proto_frame_.push_back(static_cast<char>(n));
      proto_frame_ += event_bytes_;
    });
    return std::shared_ptr<const std::string>(self, &proto_frame_);
  }
  std::call_once(json_once_, [&] {
    v1::ServerFrame f;
    f.mutable_event()->ParseFromString(event_bytes_);
    json_frame_ = EncodeServerFrame(f, WireEncoding::kJson);
  });
  return std::shared_ptr<const std::string>(self, &json_frame_);
}

void SessionHub::Add(uint64_t user_id, std::shared_ptr<SessionHandle> session) {
  std::lock_guard lk(mu_);
  by_user_[user_id].push_back(std::move(session));
  ++count_;
}

void SessionHub::Remove(uint64_t user_id, uint64_t session_id) {
  std::lock_guard lk(mu_);
  auto it = by_user_.find(user_id);
  if (it == by_user_.end()) return;
  auto& v = it->second;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i]->session_id() == session_id) {
      v[i] = std::move(v.back());
      v.pop_back();
      --count_;
      break;
    }
  }
  if (v.empty()) by_user_.erase(it);
}

int SessionHub::Deliver(std::string_view payload) {
  internal::Delivery d;
  if (!d.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    spdlog::warn("hub: dropping malformed delivery ({} bytes)", payload.size());
    return -1;
  }
  if (d.kick_session_id() != 0) return Kick(d);
  auto event = std::make_shared<const SharedEvent>(std::move(*d.mutable_event()));
  std::vector<std::shared_ptr<SessionHandle>> targets;
  {
    std::lock_guard lk(mu_);
    for (uint64_t u : d.user_ids()) {
      auto it = by_user_.find(u);
      if (it == by_user_.end()) continue;
      for (auto& s : it->second)
        if (s->session_id() != d.skip_session_id()) targets.push_back(s);
    }
  }
  for (auto& s : targets) {
    auto [it, fresh] = held_index_.try_emplace(s.get(), held_.size());
    if (fresh) held_.push_back(Held{s, {}});
    held_[it->second].events.push_back(event);
  }
  held_events_ += targets.size();
  const int n = static_cast<int>(targets.size());
  if (held_events_ >= kMaxHeldEvents) Flush();
  return n;
}

int SessionHub::Kick(internal::Delivery& d) {
  v1::Event event;
  if (d.user_ids_size() != 1 || !event.ParseFromString(d.event()) || !event.has_kicked()) {
    spdlog::warn("hub: dropping malformed kick");
    return -1;
  }
  std::shared_ptr<SessionHandle> target;
  {
    std::lock_guard lk(mu_);
    auto it = by_user_.find(d.user_ids(0));
    if (it != by_user_.end())
      for (auto& s : it->second)
        if (s->session_id() == d.kick_session_id()) target = s;
  }
  if (!target) return 0;  // already gone
  // The kicked event, then the close: both on the session's strand, in this order.
  target->PushEvents({std::make_shared<const SharedEvent>(std::move(*d.mutable_event()))});
  target->Kick(static_cast<uint16_t>(event.kicked().close_code()), event.kicked().reason());
  return 1;
}

int SessionHub::Revoke(std::string_view payload) {
  internal::Delivery d;
  v1::Event event;
  if (!d.ParseFromArray(payload.data(), static_cast<int>(payload.size())) || !d.has_revocation() ||
      d.user_ids_size() != 1 || !event.ParseFromString(d.event()) || !event.has_kicked()) {
    spdlog::warn("hub: dropping malformed revocation ({} bytes)", payload.size());
    return -1;
  }
  const uint64_t user = d.user_ids(0);
  if (on_revoke_) on_revoke_(user);
  std::vector<std::shared_ptr<SessionHandle>> targets;
  {
    std::lock_guard lk(mu_);
    auto it = by_user_.find(user);
    if (it != by_user_.end()) targets = it->second;
  }
  if (targets.empty()) return 0;
  auto revocation = std::make_shared<const internal::Revocation>(std::move(*d.mutable_revocation()));
  const auto code = static_cast<uint16_t>(event.kicked().close_code());
  const std::string reason = event.kicked().reason();
  auto kicked = std::make_shared<const SharedEvent>(std::move(*d.mutable_event()));
  for (auto& s : targets) s->Revoke(revocation, kicked, code, reason);
  return static_cast<int>(targets.size());
}

void SessionHub::Flush() {
  for (auto& h : held_) h.session->PushEvents(std::move(h.events));
  held_.clear();
  held_index_.clear();
  held_events_ = 0;
}

std::vector<std::shared_ptr<SessionHandle>> SessionHub::All() const {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<SessionHandle>> out;
  out.reserve(count_);
  for (auto& [u, v] : by_user_) out.insert(out.end(), v.begin(), v.end());
  return out;
}

size_t SessionHub::size() const {
  std::lock_guard lk(mu_);
  return count_;
}

}  // namespace chat::gateway
