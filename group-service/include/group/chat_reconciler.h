#pragma once
// ChatReconciler: the background thread that brings chat-service's copy of every group's
// membership up to date when a push failed (chat down, timed out, group-service restarted between
// commit and push). Every `interval` it re-drives at most `batch` lagging groups
// (GroupServiceImpl::RedriveLagging), walking the lagging set by group id with a cursor so that
// groups whose chat shard keeps failing cannot starve the others.
//
// Threads: Start/Stop from one owner thread (main). The service must outlive the reconciler.
// Stop wakes the thread and joins it; a pass in progress finishes the push in flight (bounded by
// its RPC deadline) and then stops.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "group/group_service.h"

namespace chat::group {

struct ChatReconcilerOptions {
  std::chrono::milliseconds interval{1000};
  size_t batch = 100;  // groups re-driven per pass at most
};

class ChatReconciler {
 public:
  ChatReconciler(GroupServiceImpl& service, ChatReconcilerOptions options);
  ~ChatReconciler();  // stops
  ChatReconciler(const ChatReconciler&) = delete;
  ChatReconciler& operator=(const ChatReconciler&) = delete;

  void Start();
  void Stop();  // idempotent

 private:
  void Run();

  GroupServiceImpl& service_;
  const ChatReconcilerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace chat::group
