// A `selffeed serve` child process on 127.0.0.1, for the load benchmark, the deployment
// simulation and the integration tests: any free port (read back from --port-file), and a
// stop() that sends a signal and reaps the process.
//
//   auto server = LocalServer::start({.binary = "build/app/selffeed", .bundle = "models/demo",
//                                     .store = "/tmp/s", .work_dir = "/tmp"});
//   WsClient::connect((*server)->ws_url());
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::clients {

struct LocalServerOptions {
  std::string binary;    // the selffeed executable
  std::string bundle;    // --bundle
  std::string store;     // --store
  std::string work_dir;  // where the port file and serve.log go
  std::vector<std::string> extra_args;  // more `serve` flags
  std::string log_level = "info";
  std::uint64_t max_open_files = 0;  // the child's RLIMIT_NOFILE (0: inherited); tests run it out
  std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
};

class LocalServer {
 public:
  // kUnavailable (with the end of serve.log) when the server exits or does not listen in time.
  static Result<std::unique_ptr<LocalServer>> start(const LocalServerOptions& options);
  ~LocalServer();  // SIGKILL when still running

  std::uint16_t port() const { return port_; }
  std::string ws_url() const;
  std::string http_url(const std::string& path) const;
  std::string log_path() const { return log_path_; }
  // Sends `signal`, waits up to `timeout` for the exit (then SIGKILL); the wait status.
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  LocalServer() = default;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string log_path_;
};

}  // namespace selffeed::clients
