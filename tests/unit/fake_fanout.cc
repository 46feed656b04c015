#include "fake_fanout.h"

namespace chat::testing {

void FakePresenceDirectory::AddSession(uint64_t user_id, const std::string& gateway_id, uint64_t session_id,
                                       const std::string& device_id) {
  internal::SessionRef s;
  s.set_user_id(user_id);
  s.set_gateway_id(gateway_id);
  s.set_session_id(session_id);
  s.set_device_id(device_id);
  std::lock_guard lk(mu_);
  sessions_[user_id].push_back(std::move(s));
}

void FakePresenceDirectory::SetUnreachable(bool down) {
  std::lock_guard lk(mu_);
  down_ = down;
}

void FakePresenceDirectory::SetPartialFailure(bool partial) {
  std::lock_guard lk(mu_);
  partial_ = partial;
}

bool FakePresenceDirectory::Lookup(const std::vector<uint64_t>& user_ids, std::vector<internal::SessionRef>* out) {
  std::lock_guard lk(mu_);
  ++lookups_;
  last_lookup_ = user_ids;
  if (down_) return false;
  for (uint64_t u : user_ids) {
    auto it = sessions_.find(u);
    if (it == sessions_.end()) continue;
    for (const auto& s : it->second) out->push_back(s);
  }
  return !partial_;
}

int FakePresenceDirectory::lookups() const {
  std::lock_guard lk(mu_);
  return lookups_;
}

std::vector<uint64_t> FakePresenceDirectory::last_lookup() const {
  std::lock_guard lk(mu_);
  return last_lookup_;
}

void FakeDeliveryPublisher::SetFailing(bool failing) {
  std::lock_guard lk(mu_);
  failing_ = failing;
}

bool FakeDeliveryPublisher::Publish(const Batch& messages) {
  std::lock_guard lk(mu_);
  calls_.push_back(messages);
  return !failing_;
}

std::vector<FakeDeliveryPublisher::Batch> FakeDeliveryPublisher::calls() const {
  std::lock_guard lk(mu_);
  return calls_;
}

FakeDeliveryPublisher::Batch FakeDeliveryPublisher::all() const {
  std::lock_guard lk(mu_);
  Batch out;
  for (const auto& c : calls_) out.insert(out.end(), c.begin(), c.end());
  return out;
}

}  // namespace chat::testing
