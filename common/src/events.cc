#include "common/events.h"

namespace chat {

std::string_view OrderingKey(const FanoutItem& item, std::string& scratch) {
  if (!item.conversation_id.empty()) return item.conversation_id;
  if (item.user_ids.empty()) return {};
  scratch = "u." + std::to_string(item.user_ids.front());
  return scratch;
}

std::vector<uint64_t> OutboxIds(const std::vector<FanoutItem>& items) {
  std::vector<uint64_t> ids;
  for (const FanoutItem& it : items)
    if (it.outbox_id != 0) ids.push_back(it.outbox_id);
  return ids;
}

internal::Delivery ToDelivery(const FanoutItem& item) {
  internal::Delivery d;
  for (uint64_t u : item.user_ids) d.add_user_ids(u);
  d.set_event(item.event.SerializeAsString());
  d.set_skip_session_id(item.skip_session_id);
  d.set_conversation_id(item.conversation_id);
  if (item.revocation) *d.mutable_revocation() = *item.revocation;
  return d;
}

bool FromDelivery(const internal::Delivery& d, FanoutItem* item) {
  if (!item->event.ParseFromString(d.event())) return false;
  item->user_ids.assign(d.user_ids().begin(), d.user_ids().end());
  item->skip_session_id = d.skip_session_id();
  item->conversation_id = d.conversation_id();
  if (d.has_revocation()) item->revocation = d.revocation();
  return true;
}

FanoutPublisher::FanoutPublisher(EventDelivery& delivery, OutboxAcks* acks, size_t workers, size_t max_queued)
    : delivery_(delivery),
      acks_(acks),
      pool_("event fan-out", workers, max_queued, /*max_per_round=*/256,
            [this](size_t, std::vector<FanoutItem>& items) { Round(items); }) {}

void FanoutPublisher::Publish(std::vector<FanoutItem> items) {
  std::string scratch;
  pool_.PushAll(std::move(items), [&scratch](const FanoutItem& it) { return OrderingKey(it, scratch); });
}

void FanoutPublisher::Round(std::vector<FanoutItem>& items) {
  if (!delivery_.DeliverNow(items) || !acks_) return;
  if (auto ids = OutboxIds(items); !ids.empty()) acks_->Ack(ids);
}

}  // namespace chat
