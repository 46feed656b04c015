#include "worker.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <unordered_map>

namespace bench {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string SourceAddressFor(int conn) { return "127.0.0." + std::to_string(2 + conn % 250); }

namespace {

namespace asio = boost::asio;

constexpr int kErrorBackoffMs = 50;

// Body: "<stream>.<seq>.<t_us>." then 'x' up to the body size. t_us is the intended send time.
std::string MakeBody(int stream, uint64_t seq, int64_t t_us, int size) {
  char head[64];
  int n = std::snprintf(head, sizeof head, "%d.%llu.%lld.", stream, static_cast<unsigned long long>(seq),
                        static_cast<long long>(t_us));
  std::string b(head, static_cast<size_t>(n));
  if (static_cast<int>(b.size()) < size) b.append(static_cast<size_t>(size) - b.size(), 'x');
  return b;
}

bool ParseBody(std::string_view b, int* stream, uint64_t* seq, int64_t* t_us) {
  const char* p = b.data();
  const char* end = p + b.size();
  uint64_t v[3];
  for (int i = 0; i < 3; ++i) {
    uint64_t x = 0;
    const char* start = p;
    while (p < end && *p >= '0' && *p <= '9') x = x * 10 + static_cast<uint64_t>(*p++ - '0');
    if (p == start || p >= end || *p != '.') return false;
    ++p;
    v[i] = x;
  }
  *stream = static_cast<int>(v[0]);
  *seq = v[1];
  *t_us = static_cast<int64_t>(v[2]);
  return true;
}

// What one receiving connection has seen from one stream.
struct StreamRecv {
  int stream = -1;
  std::vector<uint64_t> seen;  // bitmap by seq
  uint64_t distinct = 0;
  uint64_t max_seq_plus1 = 0;
};

struct ConnState {
  std::unique_ptr<ChatSession> session;
  std::vector<StreamRecv> recv;
  std::vector<std::pair<std::string, uint64_t>> last_conv_seq;  // project order check
  bool open = false;
};

struct SenderState {
  int stream = 0;
  int conn = 0;
  uint64_t next_seq = 0;
  uint32_t inflight = 0;  // sent, not yet answered (open loop cap)
  // Closed loop: seq -> completions still due (1 for the ack + 1 per receiver). A message leaves
  // the map, and frees its slot, when that count reaches 0 or its send fails.
  std::unordered_map<uint64_t, uint32_t> outstanding;
  int64_t next_due_us = 0;
  std::unique_ptr<asio::steady_timer> timer;
};

class Worker {
 public:
  Worker(const Plan& plan, Shared* shared, int index)
      : plan_(plan),
        shared_(shared),
        index_(index),
        stats_(shared->workers[index]),
        poll_(io_),
        rng_(static_cast<uint64_t>(NowUs()) * 7919u + static_cast<uint64_t>(index)) {}

  int Run() {
    for (size_t c = 0; c < plan_.conns.size(); ++c) {
      if (plan_.conn_worker[c] == index_) mine_.push_back(static_cast<int>(c));
    }
    conns_.resize(plan_.conns.size());
    sender_of_stream_.assign(plan_.streams.size(), nullptr);
    senders_.reserve(plan_.streams.size());
    for (size_t s = 0; s < plan_.streams.size(); ++s) {
      int c = plan_.streams[s].conn;
      if (plan_.conn_worker[static_cast<size_t>(c)] == index_) {
        SenderState st;
        st.stream = static_cast<int>(s);
        st.conn = c;
        st.timer = std::make_unique<asio::steady_timer>(io_);
        senders_.push_back(std::move(st));
        sender_of_stream_[s] = &senders_.back();
      }
    }
    for (int i = 0; i < plan_.connect_concurrency && next_connect_ < mine_.size(); ++i) ConnectNext();
    if (mine_.empty()) stats_.state.store(kStateReady);
    Poll();
    io_.run();
    return 0;
  }

 private:
  void NoteError(const std::string& e) {
    if (stats_.first_error[0] == 0) std::snprintf(stats_.first_error, sizeof stats_.first_error, "%s", e.c_str());
  }

  void ConnectNext() {
    if (next_connect_ >= mine_.size()) return;
    int c = mine_[next_connect_++];
    const ConnSpec& spec = plan_.conns[static_cast<size_t>(c)];
    const UserSpec& user = plan_.users[static_cast<size_t>(spec.user)];
    const Endpoint& ep = plan_.gateways[static_cast<size_t>(spec.gateway) % plan_.gateways.size()];
    ConnState& cs = conns_[static_cast<size_t>(c)];
    if (plan_.protocol == Protocol::kProject) {
      cs.session = std::make_unique<ProjectSession>(io_, ep, user.token, plan_.json);
    } else {
      cs.session = std::make_unique<SocketIoSession>(io_, ep, user.peer_id);
    }
    for (int s : spec.expect_streams) {
      StreamRecv r;
      r.stream = s;
      cs.recv.push_back(std::move(r));
    }
    cs.session->set_on_delivery([this, c](const Delivery& d) { OnDelivery(c, d); });
    cs.session->set_on_closed([this, c](const std::string& why) {
      if (conns_[static_cast<size_t>(c)].open) {
        conns_[static_cast<size_t>(c)].open = false;
        stats_.disconnected.fetch_add(1, std::memory_order_relaxed);
        NoteError("connection closed: " + why);
      }
    });
    cs.session->Open(SourceAddressFor(c), [this, c](bool ok, const std::string& err) {
      if (!ok) return ConnectDone(c, false, err);
      if (plan_.peer_group.empty()) return ConnectDone(c, true, "");
      conns_[static_cast<size_t>(c)].session->JoinGroup(plan_.peer_group, [this, c](bool ok, const std::string& err) {
        ConnectDone(c, ok, err.empty() ? err : "join: " + err);
      });
    });
  }

  void ConnectDone(int c, bool ok, const std::string& err) {
    if (ok) {
      conns_[static_cast<size_t>(c)].open = true;
      stats_.connected.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.connect_failed.fetch_add(1, std::memory_order_relaxed);
      NoteError(err);
    }
    if (++connects_done_ == mine_.size()) stats_.state.store(kStateReady);
    ConnectNext();
  }

  void OnDelivery(int c, const Delivery& d) {
    int64_t now = NowUs();
    stats_.delivered.fetch_add(1, std::memory_order_relaxed);
    int64_t ws = shared_->window_start_us.load(std::memory_order_relaxed);
    int64_t we = shared_->window_end_us.load(std::memory_order_relaxed);
    if (now >= ws && now < we) stats_.delivered_in_window.fetch_add(1, std::memory_order_relaxed);
    int stream;
    uint64_t seq;
    int64_t t;
    if (!ParseBody(d.body, &stream, &seq, &t)) {
      ++undecodable_;
      return;
    }
    ConnState& cs = conns_[static_cast<size_t>(c)];
    StreamRecv* r = nullptr;
    for (auto& x : cs.recv) {
      if (x.stream == stream) r = &x;
    }
    if (!r) {
      ++unexpected_;
      return;
    }
    size_t word = seq / 64;
    if (r->seen.size() <= word) r->seen.resize(word + 1 + word / 2, 0);
    uint64_t bit = uint64_t{1} << (seq % 64);
    if (r->seen[word] & bit) {
      ++duplicates_;
      return;
    }
    r->seen[word] |= bit;
    ++r->distinct;
    if (plan_.closed_loop) {
      if (SenderState* sp = sender_of_stream_[static_cast<size_t>(stream)]) Complete(*sp, seq, false);
    }
    stats_.distinct.fetch_add(1, std::memory_order_relaxed);
    if (t >= ws && t < we) latency_.Record(static_cast<uint64_t>(now - t > 0 ? now - t : 0));
    // Order: project by the server's per-conversation seq; socket.io by the sender's sequence.
    if (plan_.protocol == Protocol::kProject) {
      std::pair<std::string, uint64_t>* last = nullptr;
      for (auto& x : cs.last_conv_seq) {
        if (x.first == d.conversation) last = &x;
      }
      if (!last) {
        cs.last_conv_seq.emplace_back(std::string(d.conversation), 0);
        last = &cs.last_conv_seq.back();
      }
      if (d.server_seq < last->second)
        ++out_of_order_;
      else
        last->second = d.server_seq;
    } else {
      if (seq + 1 < r->max_seq_plus1) ++out_of_order_;
    }
    if (seq + 1 > r->max_seq_plus1) r->max_seq_plus1 = seq + 1;
  }

  // Sends the next message of a stream; `intended_us` is when it was due (open loop) or now.
  void SendOne(SenderState& s, int64_t intended_us) {
    ConnState& cs = conns_[static_cast<size_t>(s.conn)];
    if (!cs.open) {
      stats_.skipped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    uint64_t seq = s.next_seq++;
    const StreamSpec& spec = plan_.streams[static_cast<size_t>(s.stream)];
    std::string id = plan_.run_nonce + "-" + std::to_string(s.stream) + "-" + std::to_string(seq);
    ++s.inflight;
    if (plan_.closed_loop) s.outstanding[seq] = 1 + static_cast<uint32_t>(spec.receivers);
    stats_.sent.fetch_add(1, std::memory_order_relaxed);
    int64_t ws = shared_->window_start_us.load(std::memory_order_relaxed);
    int64_t we = shared_->window_end_us.load(std::memory_order_relaxed);
    bool in_window = intended_us >= ws && intended_us < we;
    if (in_window) stats_.sent_in_window.fetch_add(1, std::memory_order_relaxed);
    SenderState* sp = &s;
    cs.session->SendText(spec.target, std::move(id), MakeBody(s.stream, seq, intended_us, plan_.body_bytes),
                         [this, sp, seq, intended_us, in_window](bool ok, const std::string& err) {
                           --sp->inflight;
                           if (ok) {
                             stats_.acked.fetch_add(1, std::memory_order_relaxed);
                             shared_->sent_ok[sp->stream].fetch_add(1, std::memory_order_relaxed);
                             if (in_window)
                               ack_latency_.Record(static_cast<uint64_t>(std::max<int64_t>(0, NowUs() - intended_us)));
                           } else {
                             stats_.send_errors.fetch_add(1, std::memory_order_relaxed);
                             NoteError("send: " + err);
                           }
                           if (plan_.closed_loop) Complete(*sp, seq, !ok);
                         });
  }

  // Closed loop: one completion (ack or delivery) of message `seq`; `failed` drops the message
  // (no delivery will follow). When the message is done its slot sends the next one.
  void Complete(SenderState& s, uint64_t seq, bool failed) {
    auto it = s.outstanding.find(seq);
    if (it == s.outstanding.end()) return;
    if (!failed && --it->second > 0) return;
    s.outstanding.erase(it);
    if (shared_->phase.load(std::memory_order_relaxed) != kPhaseRun) return;
    if (!failed) return SendOne(s, NowUs());
    // After an error (e.g. RESOURCE_EXHAUSTED) the slot pauses instead of spinning.
    SenderState* sp = &s;
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(kErrorBackoffMs));
    t->async_wait([this, sp, t](const boost::system::error_code&) {
      if (shared_->phase.load(std::memory_order_relaxed) == kPhaseRun) SendOne(*sp, NowUs());
    });
  }

  void StartSending() {
    for (auto& s : senders_) {
      if (plan_.closed_loop) {
        for (int i = 0; i < plan_.inflight; ++i) SendOne(s, NowUs());
      } else {
        std::uniform_real_distribution<double> phase(0.0, 1.0 / plan_.rate_per_stream);
        s.next_due_us = NowUs() + static_cast<int64_t>(phase(rng_) * 1e6);
        ArmOpenLoop(s);
      }
    }
  }

  void ArmOpenLoop(SenderState& s) {
    s.timer->expires_at(std::chrono::steady_clock::time_point(std::chrono::microseconds(s.next_due_us)));
    SenderState* sp = &s;
    s.timer->async_wait([this, sp](const boost::system::error_code& ec) {
      if (ec || shared_->phase.load(std::memory_order_relaxed) != kPhaseRun) return;
      std::exponential_distribution<double> gap(plan_.rate_per_stream);
      int64_t now = NowUs();
      // Catch up on every send that fell due (keeps the offered rate when the loop runs late).
      while (sp->next_due_us <= now) {
        if (sp->inflight >= plan_.open_loop_cap)
          stats_.skipped.fetch_add(1, std::memory_order_relaxed);
        else
          SendOne(*sp, sp->next_due_us);
        sp->next_due_us += std::max<int64_t>(1, static_cast<int64_t>(gap(rng_) * 1e6));
      }
      ArmOpenLoop(*sp);
    });
  }

  void Finish() {
    uint64_t lost = 0;
    for (int c : mine_) {
      for (const auto& r : conns_[static_cast<size_t>(c)].recv) {
        uint64_t ok = shared_->sent_ok[r.stream].load();
        if (ok > r.distinct) {
          lost += ok - r.distinct;
          if (std::getenv("LOADGEN_DEBUG")) {
            std::fprintf(stderr, "lost: connection %d (user %d, gateway %d) got %llu of %llu acked from stream %d\n", c,
                         plan_.conns[static_cast<size_t>(c)].user, plan_.conns[static_cast<size_t>(c)].gateway,
                         (unsigned long long)r.distinct, (unsigned long long)ok, r.stream);
          }
        }
      }
    }
    stats_.lost = lost;
    stats_.duplicates = duplicates_;
    stats_.out_of_order = out_of_order_;
    stats_.unexpected = unexpected_;
    stats_.undecodable = undecodable_;
    stats_.latency = latency_;
    stats_.ack_latency = ack_latency_;
    stats_.state.store(kStateFinished);
    for (int c : mine_) {
      auto& cs = conns_[static_cast<size_t>(c)];
      cs.open = false;
      if (cs.session) cs.session->Close();
    }
    io_.stop();
  }

  // Follows the coordinator's phase every 5 ms.
  void Poll() {
    poll_.expires_after(std::chrono::milliseconds(5));
    poll_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      int phase = shared_->phase.load();
      if (phase >= kPhaseRun && !started_) {
        started_ = true;
        StartSending();
      }
      if (phase >= kPhaseFinish) return Finish();
      Poll();
    });
  }

  const Plan& plan_;
  Shared* shared_;
  int index_;
  WorkerStats& stats_;
  asio::io_context io_;
  asio::steady_timer poll_;
  std::mt19937_64 rng_;
  std::vector<int> mine_;
  std::vector<ConnState> conns_;                // indexed by global connection index; only mine_ are used
  std::vector<SenderState> senders_;            // reserved up front: pointers into it stay valid
  std::vector<SenderState*> sender_of_stream_;  // by stream; null when another worker sends it
  size_t next_connect_ = 0;
  size_t connects_done_ = 0;
  bool started_ = false;
  uint64_t duplicates_ = 0, out_of_order_ = 0, unexpected_ = 0, undecodable_ = 0;
  Histogram latency_, ack_latency_;
};

}  // namespace

int RunWorker(const Plan& plan, Shared* shared, int index) {
  auto w = std::make_unique<Worker>(plan, shared, index);
  return w->Run();
}

}  // namespace bench
