#pragma once
// Fakes for the two fan-out seams (common/fanout.h), shared by the unit and store tests.
// Both are thread-safe like the interfaces they stand in for.
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/fanout.h"

namespace chat::testing {

// A presence directory held in memory: user -> live sessions.
class FakePresenceDirectory : public PresenceDirectory {
 public:
  void AddSession(uint64_t user_id, const std::string& gateway_id, uint64_t session_id,
                  const std::string& device_id = "dev");
  // When set, Lookup appends nothing and reports presence unreachable.
  void SetUnreachable(bool down);
  // When set, Lookup appends the sessions it knows but still reports a failure (one shard down).
  void SetPartialFailure(bool partial);
  bool Lookup(const std::vector<uint64_t>& user_ids, std::vector<internal::SessionRef>* out) override;

  int lookups() const;
  std::vector<uint64_t> last_lookup() const;

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, std::vector<internal::SessionRef>> sessions_;
  bool down_ = false;
  bool partial_ = false;
  int lookups_ = 0;
  std::vector<uint64_t> last_lookup_;
};

// Records every Publish call instead of sending it.
class FakeDeliveryPublisher : public DeliveryPublisher {
 public:
  using Batch = std::vector<std::pair<std::string, std::string>>;
  void SetFailing(bool failing);
  bool Publish(const Batch& messages) override;

  std::vector<Batch> calls() const;
  // Every published (channel, payload), in publish order across calls.
  Batch all() const;

 private:
  mutable std::mutex mu_;
  bool failing_ = false;
  std::vector<Batch> calls_;
};

}  // namespace chat::testing
