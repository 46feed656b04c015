#pragma once
// Seam: where resolved fan-out items go. The real sink is chat::Fanout (presence lookup + one Redis
// publish per target gateway); tests record the items.
#include <vector>

#include "common/fanout.h"

namespace chat::chat_service {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called from the single fan-out thread only, items in commit order. Must not throw; failures are
  // the sink's to log (pub/sub is a doorbell, clients repair by sync).
  virtual void Deliver(const std::vector<FanoutItem>& items) = 0;
};

class FanoutEventSink : public EventSink {
 public:
  explicit FanoutEventSink(Fanout& fanout) : fanout_(fanout) {}
  void Deliver(const std::vector<FanoutItem>& items) override { fanout_.Deliver(items); }

 private:
  Fanout& fanout_;
};

}  // namespace chat::chat_service
