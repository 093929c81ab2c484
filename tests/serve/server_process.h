// Integration-test helpers: a real `selffeed serve` child process on 127.0.0.1 on a toy
// model bundle trained by `selffeed train`, and JSON request/reply helpers.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "selffeed/clients/clients.h"
#include "selffeed/clients/local_server.h"
#include "testing.h"

namespace selffeed::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The toy bundle of tests/testing/make_toy_bundle.sh, trained once per test binary.
inline std::string toy_bundle() {
  static TempDir dir;
  static std::string bundle;
  if (!bundle.empty()) return bundle;
  const std::string command = std::string(SELFFEED_SOURCE_DIR) + "/tests/testing/make_toy_bundle.sh " +
                              SELFFEED_BINARY + " " + dir.str();
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "make_toy_bundle.sh failed: " << read_file(dir.str("train.log"));
    return {};
  }
  bundle = dir.str("run/bundle");
  return bundle;
}

// `selffeed serve` on the toy bundle with the regex satisfaction baseline (deterministic),
// a store at `store`, and `extra` flags. Null (and a test failure) when it does not start.
inline std::unique_ptr<clients::LocalServer> start_server(const std::string& work_dir, const std::string& store,
                                                          std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"--satisfaction", "regex"});
  auto server = clients::LocalServer::start(
      {.binary = SELFFEED_BINARY, .bundle = toy_bundle(), .store = store, .work_dir = work_dir, .extra_args = extra});
  if (!server.ok()) {
    ADD_FAILURE() << server.status().to_string();
    return nullptr;
  }
  return std::move(*server);
}

// The next frame as JSON, or {"type": "<no frame>", ...} when none came in time.
inline nlohmann::json next_frame(clients::WsClient& client, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto frame = client.read(timeout);
  if (!frame.ok()) return {{"type", "<no frame>"}, {"status", frame.status().to_string()}};
  return nlohmann::json::parse(*frame, nullptr, false);
}

// Sends `request` and returns the next frame.
inline nlohmann::json request(clients::WsClient& client, const nlohmann::json& request) {
  auto sent = client.send_text(request.dump());
  if (!sent.ok()) return {{"type", "<send failed>"}, {"status", sent.to_string()}};
  return next_frame(client);
}

}  // namespace selffeed::testing
