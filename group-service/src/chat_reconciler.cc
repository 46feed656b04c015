#include "group/chat_reconciler.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace chat::group {

ChatReconciler::ChatReconciler(GroupServiceImpl& service, ChatReconcilerOptions options)
    : service_(service), options_(options) {}

ChatReconciler::~ChatReconciler() { Stop(); }

void ChatReconciler::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lk(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void ChatReconciler::Stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ChatReconciler::Run() {
  uint64_t cursor = 0;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      if (cv_.wait_for(lk, options_.interval, [this] { return stop_; })) return;
    }
    try {
      service_.RedriveLagging(options_.batch, &cursor, [this] {
        std::lock_guard lk(mu_);
        return stop_;
      });
    } catch (const std::exception& e) {  // never let the thread die: the next pass tries again
      spdlog::error("chat reconciler: {}", e.what());
    }
  }
}

}  // namespace chat::group
