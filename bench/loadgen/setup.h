#pragma once
// Project-only phases that run in the coordinator before any worker is forked: creating the
// benchmark's users (request_code -> code from the codes file -> sign_up, or log_in when the phone
// exists), friendships and the group, cached in a token file so re-runs skip them; and the resync
// scenario (a client catches up on messages that arrived while it was offline).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sessions.h"

namespace bench {

struct ProjectUser {
  uint64_t id = 0;
  std::string phone;
  std::string token;
};

struct SetupRequest {
  std::vector<Endpoint> gateways;
  bool json = false;
  std::string codes_file;                        // lines "<unix_ms> <phone> <code>"
  std::string cache_path;                        // token cache; empty = none
  int users = 0;                                 // users 0..users-1, phones "+1555" + 7 digits of the index
  std::vector<std::pair<int, int>> friendships;  // (requester, accepter) user indexes
  int group_size = 0;                            // > 0: user 0 owns a group of users 0..group_size-1
  int concurrency = 32;
  int timeout_s = 600;
};

struct SetupResult {
  bool ok = false;
  std::string error;
  std::vector<ProjectUser> users;
  uint64_t group_id = 0;
  double seconds = 0;
  int signed_up = 0, logged_in = 0, friendships_made = 0;
};

SetupResult RunProjectSetup(const SetupRequest& req);

struct ResyncRequest {
  std::vector<Endpoint> gateways;
  bool json = false;
  ProjectUser hub;                   // the client that goes offline
  std::vector<ProjectUser> friends;  // each sends messages / friends.size() to the hub
  int messages = 10000;
  int inflight_per_sender = 16;
  int page_limit = 200;
  std::string run_nonce;
};

struct ResyncResult {
  bool ok = false;
  std::string error;
  uint64_t sent = 0;
  uint64_t fetched = 0;  // messages fetched while catching up
  uint64_t missing = 0;  // expected but not fetched
  uint64_t duplicates = 0;
  int conversations = 0;
  int pages = 0;
  double send_seconds = 0;
  double connect_ms = 0;   // reconnect (upgrade with token)
  double list_ms = 0;      // list_conversations
  double catch_up_ms = 0;  // connect + list + every get_history page
};

ResyncResult RunResync(const ResyncRequest& req);

}  // namespace bench
