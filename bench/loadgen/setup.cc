#include "setup.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <unordered_map>

#include "common/shard.h"

namespace bench {
namespace {

namespace asio = boost::asio;
namespace v1 = chat::v1;
using asio::awaitable;
using asio::use_awaitable;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string PhoneOf(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+1555%07d", index);
  return buf;
}

awaitable<void> SleepMs(int ms) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(use_awaitable);
}

// The dev code sender's file, read incrementally: the newest code per phone with its time.
class CodeBook {
 public:
  explicit CodeBook(std::string path) : path_(std::move(path)) {}

  // Newest code for `phone` written at or after `after_ms`; polls the file up to 15 s.
  awaitable<std::string> Wait(const std::string& phone, int64_t after_ms) {
    for (int i = 0; i < 750; ++i) {
      Refresh();
      auto it = codes_.find(phone);
      if (it != codes_.end() && it->second.first >= after_ms) co_return it->second.second;
      co_await SleepMs(20);
    }
    co_return std::string();
  }

 private:
  void Refresh() {
    std::ifstream f(path_);
    if (!f) return;
    f.seekg(offset_);
    std::string line;
    while (std::getline(f, line)) {
      if (f.eof()) break;  // a partial last line: read it next time
      offset_ += static_cast<std::streamoff>(line.size() + 1);
      std::istringstream ls(line);
      int64_t ms = 0;
      std::string phone, code;
      if (ls >> ms >> phone >> code) codes_[phone] = {ms, code};
    }
  }

  std::string path_;
  std::streamoff offset_ = 0;
  std::unordered_map<std::string, std::pair<int64_t, std::string>> codes_;
};

// Runs coroutine-driven RPC sequences on one io_context, keeping every session alive until the end
// (a closed session still gets its close callback later).
class Runner {
 public:
  Runner(std::vector<Endpoint> gateways, bool json) : gateways_(std::move(gateways)), json_(json) {}

  asio::io_context& io() { return io_; }

  std::shared_ptr<ProjectSession> NewSession(int gateway, const std::string& token) {
    auto s =
        std::make_shared<ProjectSession>(io_, gateways_[static_cast<size_t>(gateway) % gateways_.size()], token, json_);
    keep_.push_back(s);
    return s;
  }

  // A call retried while the server answers RESOURCE_EXHAUSTED (rate limits), up to ~20 s.
  awaitable<v1::Reply> Call(ProjectSession& s, const v1::ClientFrame& f) {
    v1::Reply r;
    for (int attempt = 0; attempt < 100; ++attempt) {
      r = co_await s.AsyncCall(f, use_awaitable);
      if (r.status() != v1::RESOURCE_EXHAUSTED) co_return r;
      co_await SleepMs(200);
    }
    co_return r;
  }

  // Runs `n` copies of `loop` to completion or until the deadline; false on timeout.
  template <typename F>
  bool RunParallel(int n, F loop, int timeout_s) {
    int done = 0;
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(io_, loop(), [this, &done, n](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            std::fprintf(stderr, "setup: %s\n", ex.what());
          }
        }
        if (++done == n) io_.stop();
      });
    }
    io_.restart();
    io_.run_for(std::chrono::seconds(timeout_s));
    return done == n;
  }

 private:
  asio::io_context io_;
  std::vector<Endpoint> gateways_;
  bool json_;
  std::vector<std::shared_ptr<ProjectSession>> keep_;
};

v1::ClientFrame RequestCode(const std::string& phone) {
  v1::ClientFrame f;
  f.mutable_request_code()->set_phone(phone);
  return f;
}

struct Cache {
  std::map<int, ProjectUser> users;
  std::set<std::pair<int, int>> friends;
  std::map<int, uint64_t> groups;  // size -> id

  void Load(const std::string& path) {
    std::ifstream f(path);
    std::string kind;
    while (f >> kind) {
      if (kind == "user") {
        int i;
        ProjectUser u;
        f >> i >> u.id >> u.phone >> u.token;
        users[i] = u;
      } else if (kind == "friend") {
        int a, b;
        f >> a >> b;
        friends.insert({a, b});
      } else if (kind == "group") {
        int size;
        uint64_t id;
        f >> size >> id;
        groups[size] = id;
      } else {
        std::string rest;
        std::getline(f, rest);
      }
    }
  }

  void Save(const std::string& path) const {
    std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp);
      for (auto& [i, u] : users) f << "user " << i << ' ' << u.id << ' ' << u.phone << ' ' << u.token << '\n';
      for (auto& [a, b] : friends) f << "friend " << a << ' ' << b << '\n';
      for (auto& [size, id] : groups) f << "group " << size << ' ' << id << '\n';
    }
    std::rename(tmp.c_str(), path.c_str());
  }
};

}  // namespace

SetupResult RunProjectSetup(const SetupRequest& req) {
  SetupResult res;
  double t0 = SteadySeconds();
  Cache cache;
  if (!req.cache_path.empty()) cache.Load(req.cache_path);
  Runner run(req.gateways, req.json);
  CodeBook codes(req.codes_file);
  std::string error;

  // A cache from another cluster (fresh database) is useless: check one token first.
  if (!cache.users.empty()) {
    bool valid = false;
    auto check = [&]() -> awaitable<void> {
      auto s = run.NewSession(0, cache.users.begin()->second.token);
      auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
      valid = ok;
      s->Close();
    };
    run.RunParallel(1, check, 30);
    if (!valid) {
      std::fprintf(stderr, "setup: cached tokens rejected by this cluster; starting over\n");
      cache = Cache();
    }
  }

  // 1. Users.
  std::vector<int> todo;
  for (int i = 0; i < req.users; ++i) {
    if (!cache.users.count(i)) todo.push_back(i);
  }
  size_t next = 0;
  auto user_loop = [&]() -> awaitable<void> {
    while (next < todo.size() && error.empty()) {
      int i = todo[next++];
      std::string phone = PhoneOf(i);
      auto s = run.NewSession(i % static_cast<int>(req.gateways.size()), "");
      auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
      if (!ok) {
        error = "setup connect: " + err;
        co_return;
      }
      int64_t asked = WallMs() - 5;
      v1::Reply r = co_await run.Call(*s, RequestCode(phone));
      if (r.status() != v1::OK) {
        error = "request_code: " + v1::StatusCode_Name(r.status()) + " " + r.message();
        co_return;
      }
      std::string code = co_await codes.Wait(phone, asked);
      if (code.empty()) {
        error = "no code for " + phone + " in " + req.codes_file;
        co_return;
      }
      v1::ClientFrame f;
      f.mutable_sign_up()->set_phone(phone);
      f.mutable_sign_up()->set_code(code);
      f.mutable_sign_up()->set_display_name("bench " + std::to_string(i));
      f.mutable_sign_up()->set_device_id("loadgen");
      r = co_await run.Call(*s, f);
      if (r.status() == v1::ALREADY_EXISTS) {
        // The phone has an account (a database kept from an earlier run): the code stays usable
        // after ALREADY_EXISTS, so log in with it.
        v1::ClientFrame l;
        l.mutable_log_in()->set_phone(phone);
        l.mutable_log_in()->set_code(code);
        l.mutable_log_in()->set_device_id("loadgen");
        r = co_await run.Call(*s, l);
        if (r.status() == v1::OK) ++res.logged_in;
      } else if (r.status() == v1::OK) {
        ++res.signed_up;
      }
      s->Close();
      if (r.status() != v1::OK || !r.has_session()) {
        error = "sign_up/log_in: " + v1::StatusCode_Name(r.status()) + " " + r.message();
        co_return;
      }
      ProjectUser u;
      u.id = r.session().account().profile().user_id();
      u.phone = phone;
      u.token = r.session().token();
      cache.users[i] = u;
    }
  };
  if (!todo.empty()) {
    std::fprintf(stderr, "setup: creating %zu users\n", todo.size());
    if (!run.RunParallel(req.concurrency, user_loop, req.timeout_s) && error.empty()) error = "setup timed out (users)";
  }
  if (!req.cache_path.empty()) cache.Save(req.cache_path);
  if (!error.empty()) {
    res.error = error;
    return res;
  }

  // 2. Friendships.
  std::vector<std::pair<int, int>> pairs;
  for (auto p : req.friendships) {
    if (!cache.friends.count(p)) pairs.push_back(p);
  }
  next = 0;
  auto friend_loop = [&]() -> awaitable<void> {
    while (next < pairs.size() && error.empty()) {
      auto [a, b] = pairs[next++];
      const ProjectUser& ua = cache.users[a];
      const ProjectUser& ub = cache.users[b];
      auto sa = run.NewSession(0, ua.token);
      auto sb = run.NewSession(1, ub.token);
      auto [oka, ea] = co_await sa->AsyncOpen("", asio::as_tuple(use_awaitable));
      auto [okb, eb] = co_await sb->AsyncOpen("", asio::as_tuple(use_awaitable));
      if (!oka || !okb) {
        error = "friend connect: " + ea + eb;
        co_return;
      }
      v1::ClientFrame f;
      f.mutable_send_friend_request()->set_user_id(ub.id);
      f.mutable_send_friend_request()->set_greeting("bench");
      v1::Reply r = co_await run.Call(*sa, f);
      if (r.status() != v1::OK && r.status() != v1::ALREADY_EXISTS) {
        error = "send_friend_request: " + v1::StatusCode_Name(r.status()) + " " + r.message();
        co_return;
      }
      if (!(r.has_send_friend_request() && r.send_friend_request().already_friends())) {
        v1::ClientFrame acc;
        acc.mutable_accept_friend_request()->set_user_id(ua.id);
        r = co_await run.Call(*sb, acc);
        if (r.status() != v1::OK && r.status() != v1::ALREADY_EXISTS) {
          error = "accept_friend_request: " + v1::StatusCode_Name(r.status()) + " " + r.message();
          co_return;
        }
      }
      sa->Close();
      sb->Close();
      cache.friends.insert({a, b});
      ++res.friendships_made;
    }
  };
  if (!pairs.empty()) {
    std::fprintf(stderr, "setup: making %zu friendships\n", pairs.size());
    if (!run.RunParallel(std::min(req.concurrency, 8), friend_loop, req.timeout_s) && error.empty()) {
      error = "setup timed out (friends)";
    }
  }
  if (!req.cache_path.empty()) cache.Save(req.cache_path);
  if (!error.empty()) {
    res.error = error;
    return res;
  }

  // 3. The group: user 0 creates it with users 1..size-1 (all its friends), in batches.
  if (req.group_size > 0 && !cache.groups.count(req.group_size)) {
    auto group = [&]() -> awaitable<void> {
      auto s = run.NewSession(0, cache.users[0].token);
      auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
      if (!ok) {
        error = "group connect: " + err;
        co_return;
      }
      constexpr int kBatch = 100;
      uint64_t gid = 0;
      for (int from = 1; from < req.group_size; from += kBatch) {
        v1::ClientFrame f;
        if (gid == 0) {
          f.mutable_create_group()->set_name("bench " + std::to_string(req.group_size));
          for (int i = from; i < std::min(req.group_size, from + kBatch); ++i) {
            f.mutable_create_group()->add_member_ids(cache.users[i].id);
          }
        } else {
          f.mutable_add_group_members()->set_group_id(gid);
          for (int i = from; i < std::min(req.group_size, from + kBatch); ++i) {
            f.mutable_add_group_members()->add_user_ids(cache.users[i].id);
          }
        }
        v1::Reply r = co_await run.Call(*s, f);
        if (r.status() != v1::OK) {
          error = "create_group/add_group_members: " + v1::StatusCode_Name(r.status()) + " " + r.message();
          co_return;
        }
        if (gid == 0) gid = r.group().group().group_id();
      }
      s->Close();
      cache.groups[req.group_size] = gid;
    };
    std::fprintf(stderr, "setup: creating a group of %d\n", req.group_size);
    if (!run.RunParallel(1, group, req.timeout_s) && error.empty()) error = "setup timed out (group)";
    if (!req.cache_path.empty()) cache.Save(req.cache_path);
    if (!error.empty()) {
      res.error = error;
      return res;
    }
  }

  for (int i = 0; i < req.users; ++i) res.users.push_back(cache.users[i]);
  if (req.group_size > 0) res.group_id = cache.groups[req.group_size];
  res.ok = true;
  res.seconds = SteadySeconds() - t0;
  return res;
}

ResyncResult RunResync(const ResyncRequest& req) {
  ResyncResult res;
  Runner run(req.gateways, req.json);
  std::string error;
  std::map<std::string, uint64_t> baseline;  // conversation -> last_seq before going offline

  auto conversations = [&](ProjectSession& s, std::map<std::string, uint64_t>* out) -> awaitable<bool> {
    v1::ClientFrame f;
    f.mutable_list_conversations();
    v1::Reply r = co_await run.Call(s, f);
    if (r.status() != v1::OK) {
      error = "list_conversations: " + v1::StatusCode_Name(r.status()) + " " + r.message();
      co_return false;
    }
    for (const auto& c : r.conversations().conversations()) (*out)[c.conversation_id()] = c.last_seq();
    co_return true;
  };

  // 1. The hub notes where it is, then goes offline.
  auto before = [&]() -> awaitable<void> {
    auto s = run.NewSession(0, req.hub.token);
    auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
    if (!ok) {
      error = "hub connect: " + err;
      co_return;
    }
    co_await conversations(*s, &baseline);
    s->Close();
  };
  run.RunParallel(1, before, 30);
  if (!error.empty()) {
    res.error = error;
    return res;
  }

  // 2. Its friends send while it is away: each friend has `inflight_per_sender` lanes (sessions),
  // lane l sending messages l, l+K, l+2K, ... one at a time.
  std::map<std::string, uint64_t> acked;  // conversation -> messages acked
  const int lanes = std::max(1, req.inflight_per_sender);
  const int per_friend = req.messages / static_cast<int>(req.friends.size());
  std::vector<std::pair<size_t, int>> jobs;
  for (size_t fi = 0; fi < req.friends.size(); ++fi) {
    for (int l = 0; l < lanes; ++l) jobs.emplace_back(fi, l);
  }
  size_t next_job = 0;
  double t_send = SteadySeconds();
  auto lane = [&]() -> awaitable<void> {
    auto [fi, l] = jobs[next_job++];
    const ProjectUser& u = req.friends[fi];
    std::string conv = chat::DirectConversationId(req.hub.id, u.id);
    auto s = run.NewSession(static_cast<int>(fi % 2), u.token);
    auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
    if (!ok) {
      error = "sender connect: " + err;
      co_return;
    }
    for (int i = l; i < per_friend && error.empty(); i += lanes) {
      v1::ClientFrame f;
      auto* m = f.mutable_send_message();
      m->set_conversation_id(conv);
      m->set_client_msg_id(req.run_nonce + "-r-" + std::to_string(i));
      m->mutable_content()->mutable_text()->set_text("resync " + std::to_string(i));
      v1::Reply r = co_await run.Call(*s, f);
      if (r.status() != v1::OK) {
        error = "send_message: " + v1::StatusCode_Name(r.status()) + " " + r.message();
        co_return;
      }
      ++acked[conv];
      ++res.sent;
    }
    s->Close();
  };
  if (!run.RunParallel(static_cast<int>(jobs.size()), lane, 300) && error.empty()) error = "resync senders timed out";
  res.send_seconds = SteadySeconds() - t_send;
  if (!error.empty()) {
    res.error = error;
    return res;
  }

  // 3. The hub comes back: connect, list conversations, page every conversation forward from where
  // it was. Timed from the start of the connect to the last page.
  auto back = [&]() -> awaitable<void> {
    double t0 = SteadySeconds();
    auto s = run.NewSession(1, req.hub.token);
    auto [ok, err] = co_await s->AsyncOpen("", asio::as_tuple(use_awaitable));
    if (!ok) {
      error = "hub reconnect: " + err;
      co_return;
    }
    double t1 = SteadySeconds();
    std::map<std::string, uint64_t> now;
    if (!co_await conversations(*s, &now)) co_return;
    double t2 = SteadySeconds();
    for (auto& [conv, last] : now) {
      uint64_t from = baseline.count(conv) ? baseline[conv] : 0;
      if (last <= from) continue;
      ++res.conversations;
      uint64_t after = from;
      uint64_t got = 0;
      for (;;) {
        v1::ClientFrame f;
        auto* h = f.mutable_get_history();
        h->set_conversation_id(conv);
        h->set_after_seq(after);
        h->set_limit(static_cast<uint32_t>(req.page_limit));
        v1::Reply r = co_await run.Call(*s, f);
        ++res.pages;
        if (r.status() != v1::OK) {
          error = "get_history: " + v1::StatusCode_Name(r.status()) + " " + r.message();
          co_return;
        }
        for (const auto& m : r.history().messages()) {
          if (m.seq() <= after)
            ++res.duplicates;
          else
            ++got;
          after = std::max<uint64_t>(after, m.seq());
        }
        if (!r.history().has_more() || r.history().messages().empty()) break;
      }
      res.fetched += got;
      uint64_t expect = acked.count(conv) ? acked[conv] : 0;
      if (got < expect) res.missing += expect - got;
    }
    double t3 = SteadySeconds();
    res.connect_ms = (t1 - t0) * 1e3;
    res.list_ms = (t2 - t1) * 1e3;
    res.catch_up_ms = (t3 - t0) * 1e3;
    for (auto& [conv, n] : acked) {
      if (!now.count(conv)) res.missing += n;
    }
    s->Close();
  };
  if (!run.RunParallel(1, back, 120) && error.empty()) error = "resync catch-up timed out";
  res.error = error;
  res.ok = error.empty() && res.missing == 0 && res.duplicates == 0;
  return res;
}

}  // namespace bench
