#include "selffeed/clients/local_server.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace selffeed::clients {
namespace {

std::string tail_of(const std::string& path, std::size_t bytes = 4000) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace

Result<std::unique_ptr<LocalServer>> LocalServer::start(const LocalServerOptions& options) {
  std::unique_ptr<LocalServer> server(new LocalServer());
  const std::string port_file = options.work_dir + "/port";
  server->log_path_ = options.work_dir + "/serve.log";
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  std::filesystem::remove(port_file, ec);
  std::vector<std::string> args = {options.binary, "--log-level", options.log_level, "--log-file", server->log_path_,
                                   "serve",        "--store",     options.store,     "--bundle",   options.bundle,
                                   "--port",       "0",           "--port-file",     port_file};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::fflush(nullptr);  // or the child would write our buffered output a second time
  server->pid_ = fork();
  if (server->pid_ < 0) return unavailable_error("fork failed");
  if (server->pid_ == 0) {
    // The child's console output goes to the log as well; its stdin is nothing.
    if (std::freopen("/dev/null", "r", stdin) == nullptr ||
        std::freopen(server->log_path_.c_str(), "a", stdout) == nullptr) {
      _exit(126);
    }
    dup2(STDOUT_FILENO, STDERR_FILENO);
    if (options.max_open_files > 0) {
      const rlimit limit{options.max_open_files, options.max_open_files};
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(125);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::filesystem::exists(port_file, ec)) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        server->port_ = static_cast<std::uint16_t>(port);
        return server;
      }
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return unavailable_error("selffeed serve exited during startup:\n" + tail_of(server->log_path_));
    }
  }
  return unavailable_error("selffeed serve did not listen in time:\n" + tail_of(server->log_path_));
}

LocalServer::~LocalServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string LocalServer::ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }

std::string LocalServer::http_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

int LocalServer::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

}  // namespace selffeed::clients
