// Integration-test helpers: a real `selffeed serve` child process on 127.0.0.1 (any free
// port, read back from --port-file), and a toy model bundle trained by `selffeed train`.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "testing.h"

namespace selffeed::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A toy bundle (colour/place questions, tiny model, 40 steps), trained once per test binary.
inline std::string toy_bundle() {
  static TempDir dir;
  static std::string bundle;
  if (!bundle.empty()) return bundle;
  const std::vector<std::string> objects = {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"};
  const std::vector<std::string> colours = {"red", "blue", "green", "yellow", "black", "white", "pink", "grey"};
  {
    std::ofstream train(dir.str("train.txt"));
    for (std::size_t i = 0; i < objects.size(); ++i) {
      train << "1 hello ! what colour is your " << objects[i] << " ?\tmy " << objects[i] << " is " << colours[i]
            << " .\n2 nice . where is it ?\tit is in the garden , near the " << objects[(i + 1) % objects.size()]
            << " .\n";
    }
  }
  const std::string command = std::string(SELFFEED_BINARY) + " --log-level warn train --out " + dir.str("run") +
                              " --personachat " + dir.str("train.txt") +
                              " --holdout 0.25 --steps 40 --validate-every 20 --batch 8 --d-model 32 --heads 2"
                              " --layers 1 --ffn 16 --vocab 100 --version toy-v1 > " +
                              dir.str("train.json") + " 2> " + dir.str("train.log");
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "selffeed train failed: " << read_file(dir.str("train.log"));
    return {};
  }
  bundle = dir.str("run/bundle");
  return bundle;
}

class ServerProcess {
 public:
  // Starts `selffeed serve --store <store> --bundle <toy> --port 0 <extra...>` and waits
  // (up to 60 s) until it listens. Fails the test when it does not.
  ServerProcess(const std::string& work_dir, const std::string& store, std::vector<std::string> extra)
      : port_file_(work_dir + "/port"), log_(work_dir + "/serve.log") {
    std::filesystem::remove(port_file_);
    std::vector<std::string> args = {SELFFEED_BINARY, "--log-level", "info", "--log-file", log_, "serve",
                                     "--store", store, "--bundle", toy_bundle(), "--port", "0",
                                     "--port-file", port_file_, "--satisfaction", "regex"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (std::filesystem::exists(port_file_)) port_ = static_cast<std::uint16_t>(std::stoi(read_file(port_file_)));
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
    }
    if (port_ == 0) ADD_FAILURE() << "selffeed serve did not start; log:\n" << read_file(log_);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  std::uint16_t port() const { return port_; }
  std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }
  std::string http_url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string log() const { return read_file(log_); }

  // Sends `signal` and waits (up to 30 s) for the exit; returns the wait status.
  int stop(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    for (int i = 0; i < 300; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    ADD_FAILURE() << "selffeed serve did not exit after signal " << signal;
    return status;
  }

 private:
  std::string port_file_;
  std::string log_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

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
