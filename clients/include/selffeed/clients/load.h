// The load generator: N simulated users, each a WebSocket connection that says hello and
// then sends messages one at a time (closed loop), timing each reply.
//
//   LoadReport r = run_load({.url = server->ws_url(), .users = 16, .utterances = lines});
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::clients {

struct LoadOptions {
  std::string url;
  int users = 1;
  std::chrono::milliseconds duration = std::chrono::seconds(10);
  // Mean pause between a reply and the user's next message (0: as fast as replies come);
  // each pause is drawn from 0.5x..1.5x, and users start at random points of one pause.
  std::chrono::milliseconds think_time{0};
  // What the users say, cycled through (user u starts at a different offset).
  std::vector<std::string> utterances;
  // After this many messages a user starts a new conversation.
  int messages_per_conversation = 20;
  // The address the users connect from (ClientOptions::local_address); empty: the OS picks.
  std::string local_address;
};

struct LoadReport {
  int users = 0;
  std::uint64_t turns = 0;   // replies received
  std::uint64_t errors = 0;  // error frames, timeouts and dropped connections
  double seconds = 0;
  double turns_per_second = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;  // message sent -> reply read
};

// kInvalidArgument without utterances; kUnavailable when no user can connect.
Result<LoadReport> run_load(const LoadOptions& options);

}  // namespace selffeed::clients
