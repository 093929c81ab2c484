// Whole-server load: starts `selffeed serve` on loopback for each setting, runs N closed-loop
// simulated users (clients/load.h) and reports reply latency percentiles and turns/s, with
// micro-batching on and off in the same run. Prints a Markdown table for BENCHMARKS.md.
//
//   chat_load_bench --bundle models/demo --utterances FILE [--users 1,16,64] [--seconds 10]
//                   [--batches 32,1] [--think-ms 0] [--url ws://... (a running server)]
//                   [--while "COMMAND"] [--from ADDRESS (connect from it, e.g. 127.0.0.2)]
//                   [--shadow BUNDLE [--shadow-share 1]] [--serve-args "ARGS" (more `serve` flags)]
// With --while, every setting runs twice on the same server: idle, then with COMMAND (e.g.
// a `selffeed retrain` at the periodic trainer's priority) running beside it. With
// --shadow, twice as well: alone, then with BUNDLE in shadow on that share of the
// conversations.
// FILE is ParlAI text (e.g. PersonaChat valid); the users say its utterances.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "selffeed/clients/clients.h"
#include "selffeed/clients/load.h"
#include "selffeed/clients/local_server.h"

using namespace selffeed;

namespace {

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// The latest utterance of each ParlAI line's text field (persona lines skipped).
std::vector<std::string> read_utterances(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    std::string text = line.substr(space + 1, line.find('\t') - space - 1);
    if (const auto nl = text.rfind("\\n"); nl != std::string::npos) text = text.substr(nl + 2);
    if (!text.empty() && !text.starts_with("your persona:")) out.push_back(text);
  }
  return out;
}

void print_row(int batch, int users, const clients::LoadReport& r, const std::string& note = "") {
  std::printf("| %d | %d | %llu | %.1f | %.2f | %.2f | %.2f | %.2f | %llu |%s\n", batch, users,
              static_cast<unsigned long long>(r.turns), r.turns_per_second, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms,
              static_cast<unsigned long long>(r.errors), note.empty() ? "" : (" " + note + " |").c_str());
  std::fflush(stdout);
}

// `sh -c COMMAND` in its own process group, so that all of it can be stopped at once.
pid_t start_beside(const std::string& command) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let it get going
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bundle = "models/demo", utterances_file, users_list = "1,16,64", batches_list = "32,1";
  std::string binary = SELFFEED_BINARY;
  std::string url;  // a running server instead of starting one per setting
  std::string beside;  // --while
  std::string from;    // --from: the users' address
  std::string shadow;  // --shadow: a bundle
  double shadow_share = 1;
  std::vector<std::string> serve_args;  // --serve-args, split at spaces
  int seconds = 10, think_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--bundle") bundle = argv[i + 1];
    else if (flag == "--utterances") utterances_file = argv[i + 1];
    else if (flag == "--users") users_list = argv[i + 1];
    else if (flag == "--batches") batches_list = argv[i + 1];
    else if (flag == "--seconds") seconds = std::stoi(argv[i + 1]);
    else if (flag == "--think-ms") think_ms = std::stoi(argv[i + 1]);
    else if (flag == "--selffeed") binary = argv[i + 1];
    else if (flag == "--url") url = argv[i + 1];
    else if (flag == "--while") beside = argv[i + 1];
    else if (flag == "--from") from = argv[i + 1];
    else if (flag == "--shadow") shadow = argv[i + 1];
    else if (flag == "--shadow-share") shadow_share = std::stod(argv[i + 1]);
    else if (flag == "--serve-args") {
      std::istringstream words(argv[i + 1]);
      for (std::string word; words >> word;) serve_args.push_back(word);
    }
  }
  const bool second_run = !beside.empty() || !shadow.empty();
  if (!beside.empty() && !shadow.empty()) {
    std::fprintf(stderr, "--while and --shadow each make a second run: give one of them\n");
    return 2;
  }
  const std::vector<std::string> utterances = read_utterances(utterances_file);
  if (utterances.empty()) {
    std::fprintf(stderr, "usage: chat_load_bench --bundle DIR --utterances PARLAI_FILE [--users 1,16,64] "
                         "[--batches 32,1] [--seconds 10] [--think-ms 0]\n");
    return 2;
  }
  const std::string work = std::filesystem::temp_directory_path() / ("selffeed-load-" + std::to_string(getpid()));

  std::printf("| max batch | users | turns | turns/s | p50 ms | p95 ms | p99 ms | max ms | errors |%s\n",
              second_run ? " beside |" : "");
  std::printf("|---|---|---|---|---|---|---|---|---|%s\n", second_run ? "---|" : "");
  for (int batch : parse_list(batches_list)) {
    for (int users : parse_list(users_list)) {
      if (!url.empty()) {
        auto report = clients::run_load({.url = url, .users = users, .duration = std::chrono::seconds(seconds),
                                         .think_time = std::chrono::milliseconds(think_ms), .utterances = utterances,
                                         .local_address = from});
        if (!report.ok()) return std::fprintf(stderr, "%s\n", report.status().to_string().c_str()), 1;
        print_row(0, users, *report);
        continue;
      }
      const std::string dir = work + "/b" + std::to_string(batch) + "-u" + std::to_string(users);
      std::vector<std::string> args = {"--max-batch", std::to_string(batch), "--rate", "100000", "--burst", "100000",
                                       "--max-connections", "10000", "--max-connections-per-address", "0",
                                       "--admin-token", "bench"};
      args.insert(args.end(), serve_args.begin(), serve_args.end());
      auto server = clients::LocalServer::start({.binary = binary, .bundle = bundle, .store = dir + "/store",
                                                 .work_dir = dir, .extra_args = args, .log_level = "warn"});
      if (!server.ok()) {
        std::fprintf(stderr, "%s\n", server.status().to_string().c_str());
        return 1;
      }
      const clients::LoadOptions load{.url = (*server)->ws_url(), .users = users,
                                      .duration = std::chrono::seconds(seconds),
                                      .think_time = std::chrono::milliseconds(think_ms), .utterances = utterances,
                                      .local_address = from};
      auto report = clients::run_load(load);
      if (!report.ok()) {
        std::fprintf(stderr, "%s\n", report.status().to_string().c_str());
        return 1;
      }
      print_row(batch, users, *report, second_run ? "idle" : "");
      if (!shadow.empty()) {
        const std::string body = "{\"bundle\": \"" + std::filesystem::absolute(shadow).string() +
                                 "\", \"share\": " + std::to_string(shadow_share) + "}";
        auto started = clients::http_request("POST", (*server)->http_url("/admin/models/shadow"), body, "Bearer bench",
                                             std::chrono::minutes(5));
        if (!started.ok() || started->status != 200) {
          std::fprintf(stderr, "the shadow did not start: %s\n",
                       started.ok() ? started->body.c_str() : started.status().to_string().c_str());
          return 1;
        }
        auto shadowed = clients::run_load(load);
        if (!shadowed.ok()) return std::fprintf(stderr, "%s\n", shadowed.status().to_string().c_str()), 1;
        print_row(batch, users, *shadowed, "a shadow, share " + std::to_string(shadow_share).substr(0, 4));
      }
      if (!beside.empty()) {
        const pid_t pid = start_beside(beside);
        auto busy = clients::run_load(load);
        kill(-pid, SIGKILL);  // the command's whole process group
        waitpid(pid, nullptr, 0);
        if (!busy.ok()) return std::fprintf(stderr, "%s\n", busy.status().to_string().c_str()), 1;
        print_row(batch, users, *busy, "while: " + beside.substr(0, beside.find(' ')));
      }
      (*server)->stop(SIGTERM);
    }
  }
  std::filesystem::remove_all(work);
  return 0;
}
