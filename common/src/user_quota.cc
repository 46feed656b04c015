#include "common/user_quota.h"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/redis.h"

namespace chat {

namespace {

// KEYS: one per user, each holding all of that user's buckets of this quota set as one string,
// "<ts> <tokens 1> ... <tokens S>" (ts: ms of Redis's clock when they were last written). ARGV: S,
// then capacity and window_ms of each of the S quotas, then the number of requests, then per request
// its number of charges followed by (bucket, cost) pairs, bucket = (key index - 1) * S + quota index.
// Returns one wait (ms) per request, 0 = passed. Each key is read once (GET) and, when charged,
// written once (SET PX, expiring when all its buckets would be full again): two Redis calls per
// user, whatever the number of quotas or requests.
constexpr const char* kTakeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local S = tonumber(ARGV[1])
local cap, win, ttl = {}, {}, 1
for q = 1, S do
  cap[q] = tonumber(ARGV[2 * q])
  win[q] = tonumber(ARGV[2 * q + 1])
  if cap[q] > 0 and win[q] > ttl then ttl = win[q] end
end
local tokens, touched = {}, {}
for j = 1, #KEYS do
  local v = redis.call('GET', KEYS[j])
  local ts, saved = nil, {}
  if v then
    for w in string.gmatch(v, '%S+') do
      if ts == nil then ts = tonumber(w) else saved[#saved + 1] = tonumber(w) end
    end
  end
  for q = 1, S do
    local tk = saved[q]
    if ts == nil or tk == nil then
      tk = cap[q]
    elseif now > ts and cap[q] > 0 then
      tk = math.min(cap[q], tk + (now - ts) * cap[q] / win[q])
    end
    tokens[(j - 1) * S + q] = math.min(tk, cap[q])
  end
end
local p = 2 * S + 2
local requests = tonumber(ARGV[p])
p = p + 1
local out = {}
for r = 1, requests do
  local k = tonumber(ARGV[p])
  local first = p + 1
  local wait = 0
  for c = 0, k - 1 do
    local i, cost = tonumber(ARGV[first + 2 * c]), tonumber(ARGV[first + 2 * c + 1])
    local q = (i - 1) % S + 1
    if tokens[i] < cost then
      wait = math.max(wait, math.ceil((cost - tokens[i]) * win[q] / cap[q]))
    end
  end
  if wait == 0 then
    for c = 0, k - 1 do
      local i = tonumber(ARGV[first + 2 * c])
      tokens[i] = tokens[i] - tonumber(ARGV[first + 2 * c + 1])
      touched[math.floor((i - 1) / S) + 1] = true
    end
  end
  out[r] = math.max(wait, 0)
  p = first + 2 * k
end
for j in pairs(touched) do
  local parts = {tostring(now)}
  for q = 1, S do parts[q + 1] = tostring(tokens[(j - 1) * S + q]) end
  redis.call('SET', KEYS[j], table.concat(parts, ' '), 'PX', ttl)
end
return out
)lua";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The script's SHA-1 in hex, as EVALSHA names it.
std::string ScriptSha(std::string_view script) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The key of one bucket in this process's own map (when Redis is unreachable).
std::string BucketKey(const QuotaSpec& spec, uint64_t user_id) {
  return "rl:{" + std::to_string(user_id) + "}:" + spec.name;
}

// The tokens of a bucket last seen holding `tokens` at `ts_ms`, at `now_ms`.
double Refilled(const QuotaSpec& spec, double tokens, int64_t ts_ms, int64_t now_ms) {
  if (now_ms <= ts_ms) return tokens;
  return std::min<double>(static_cast<double>(spec.capacity), tokens + static_cast<double>(now_ms - ts_ms) *
                                                                           static_cast<double>(spec.capacity) /
                                                                           static_cast<double>(spec.window_ms));
}

}  // namespace

UserQuotas::UserQuotas(RedisConfig redis, std::vector<QuotaSpec> specs, QuotaOptions options)
    : specs_(std::move(specs)), options_(options) {
  for (const auto& s : specs_) {
    if (s.name.empty() || s.window_ms < 1)
      throw std::invalid_argument("quota needs a name and a window of at least 1 ms: " + s.name);
    set_name_ += (set_name_.empty() ? "" : "+") + s.name;
  }
  redis.timeout_ms = std::min(redis.timeout_ms, std::max(options_.timeout_ms, 1));
  redis_ = std::make_unique<RedisClient>(std::move(redis));
}

UserQuotas::~UserQuotas() = default;

bool UserQuotas::degraded() const {
  std::lock_guard lk(mu_);
  return redis_failed_at_ms_ >= 0 && NowMs() - redis_failed_at_ms_ < options_.local_hold_ms;
}

std::vector<int64_t> UserQuotas::Take(const std::vector<std::vector<QuotaCharge>>& requests) {
  std::vector<int64_t> out(requests.size(), 0);
  bool any = false;
  for (const auto& r : requests)
    for (const auto& c : r) any = any || specs_.at(c.quota).capacity > 0;
  if (!any) return out;
  if (!degraded() && TakeFromRedis(requests, &out)) return out;
  TakeLocally(requests, &out);
  return out;
}

// "s:" keeps these strings apart from the per-bucket hashes of earlier releases (same names).
std::string UserQuotas::SetKey(uint64_t user_id) const { return "rl:{" + std::to_string(user_id) + "}:s:" + set_name_; }

bool UserQuotas::TakeFromRedis(const std::vector<std::vector<QuotaCharge>>& requests, std::vector<int64_t>* out) {
  // Distinct users become KEYS; each request's charges name their bucket by (user index, quota).
  const size_t quotas = specs_.size();
  std::vector<std::string> keys;
  std::unordered_map<uint64_t, size_t> index;
  std::vector<std::string> tail;
  tail.push_back(std::to_string(requests.size()));
  for (const auto& r : requests) {
    std::vector<std::string> pairs;
    for (const auto& c : r) {
      const QuotaSpec& spec = specs_.at(c.quota);
      if (spec.capacity == 0) continue;
      auto [it, fresh] = index.emplace(c.user_id, keys.size());
      if (fresh) keys.push_back(SetKey(c.user_id));
      pairs.push_back(std::to_string(it->second * quotas + c.quota + 1));
      pairs.push_back(std::to_string(std::min(c.cost, spec.capacity)));
    }
    tail.push_back(std::to_string(pairs.size() / 2));
    tail.insert(tail.end(), std::make_move_iterator(pairs.begin()), std::make_move_iterator(pairs.end()));
  }
  static const std::string sha = ScriptSha(kTakeScript);
  std::vector<std::string> args = {"EVALSHA", sha, std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  args.push_back(std::to_string(quotas));
  for (const QuotaSpec& spec : specs_) {
    args.push_back(std::to_string(spec.capacity));
    args.push_back(std::to_string(spec.window_ms));
  }
  args.insert(args.end(), tail.begin(), tail.end());

  auto reply = redis_->Command(args);
  if (reply && reply->type == RedisReply::Type::kError && reply->str.rfind("NOSCRIPT", 0) == 0) {
    // A Redis that restarted (or never saw the script): EVAL runs it and caches it for EVALSHA.
    args[0] = "EVAL";
    args[1] = kTakeScript;
    reply = redis_->Command(args);
  }
  const bool ok = reply && reply->type == RedisReply::Type::kArray && reply->elements.size() == requests.size();
  if (!ok) {
    std::lock_guard lk(mu_);
    if (redis_failed_at_ms_ < 0)
      spdlog::warn("user quotas: Redis {}; per-process buckets decide until it answers",
                   reply ? "refused the script: " + reply->str : std::string("is unreachable"));
    redis_failed_at_ms_ = NowMs();
    return false;
  }
  {
    std::lock_guard lk(mu_);
    if (redis_failed_at_ms_ >= 0) spdlog::info("user quotas: Redis answers again; cluster-wide buckets decide");
    redis_failed_at_ms_ = -1;
  }
  for (size_t i = 0; i < requests.size(); ++i) (*out)[i] = std::max<long long>(reply->elements[i].integer, 0);
  return true;
}

void UserQuotas::TakeLocally(const std::vector<std::vector<QuotaCharge>>& requests, std::vector<int64_t>* out) {
  std::lock_guard lk(mu_);
  const int64_t now = NowMs();
  for (size_t r = 0; r < requests.size(); ++r) {
    int64_t wait = 0;
    std::vector<std::pair<LocalBucket*, double>> takes;
    for (const auto& c : requests[r]) {
      const QuotaSpec& spec = specs_.at(c.quota);
      if (spec.capacity == 0) continue;
      auto [it, fresh] = local_.try_emplace(BucketKey(spec, c.user_id));
      LocalBucket& b = it->second;
      if (fresh) b = {static_cast<double>(spec.capacity), now};
      b.tokens = Refilled(spec, b.tokens, b.ts_ms, now);
      b.ts_ms = std::max(b.ts_ms, now);
      const double cost = static_cast<double>(std::min(c.cost, spec.capacity));
      if (b.tokens < cost)
        wait = std::max<int64_t>(
            wait, static_cast<int64_t>(std::ceil((cost - b.tokens) * static_cast<double>(spec.window_ms) /
                                                 static_cast<double>(spec.capacity))));
      takes.emplace_back(&b, cost);
    }
    if (wait == 0)
      for (auto& [b, cost] : takes) b->tokens -= cost;
    (*out)[r] = std::max<int64_t>(wait, 0);
    local_charges_since_sweep_ += takes.size();
  }
  // Forget buckets that have refilled (a full bucket and no bucket are the same), now and then, so
  // the map holds only users charged within the last window.
  if (local_charges_since_sweep_ < 4096) return;
  local_charges_since_sweep_ = 0;
  for (auto it = local_.begin(); it != local_.end();) {
    const auto colon = it->first.rfind(':');
    const std::string name = it->first.substr(colon + 1);
    auto spec = std::find_if(specs_.begin(), specs_.end(), [&](const QuotaSpec& s) { return s.name == name; });
    if (spec == specs_.end() || Refilled(*spec, it->second.tokens, it->second.ts_ms, now) >= spec->capacity)
      it = local_.erase(it);
    else
      ++it;
  }
}

Status QuotaExceeded(const std::string& what, int64_t retry_after_ms) {
  return ResourceExhausted(what + "; retry after " + std::to_string(retry_after_ms) + " ms")
      .WithRetryAfter(retry_after_ms);
}

}  // namespace chat
