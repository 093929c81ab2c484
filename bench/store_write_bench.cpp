// Acknowledged-write throughput of the store with sync on: 1 and 8 concurrent writers,
// with and without group commit. Each record is one chat turn plus one harvested example
// committed together, as the server does. Prints a Markdown table for BENCHMARKS.md.
//
//   store_write_bench [--seconds S] [--dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "selffeed/store/store.h"

using namespace selffeed;
using Clock = std::chrono::steady_clock;

struct RunResult {
  std::uint64_t records = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0;
};

RunResult run(const std::string& dir, int writers, bool group_commit, double seconds, std::uint64_t min_free_bytes = 0) {
  std::filesystem::remove_all(dir);
  auto store = store::Store::open(
      {.path = dir, .sync_writes = true, .group_commit = group_commit, .min_free_bytes = min_free_bytes});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().to_string().c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(writers);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::string conversation = "bench-" + std::to_string(w);
      for (std::uint32_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        store::WriteSet set;
        set.turns.push_back({.conversation_id = conversation, .index = i, .speaker = Speaker::kUser,
                             .text = "i love hiking in the mountains with my two dogs on weekends", .satisfaction = 0.8});
        set.examples.push_back({.kind = ExampleKind::kHB, .context = "__p2__ do you have pets? __p1__ yes, two dogs",
                                .target = "i love hiking in the mountains with my two dogs on weekends",
                                .conversation_id = conversation, .turn_index = i, .user_id = "bench-user",
                                .satisfaction = 0.8, .model_version = "bench", .source = "bench"});
        auto t0 = Clock::now();
        auto committed = (*store)->commit(set);
        latencies[w].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!committed.ok()) {
          std::fprintf(stderr, "%s\n", committed.status().to_string().c_str());
          std::exit(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  RunResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  r.records = all.size();
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

int main(int argc, char** argv) {
  double seconds = 5;
  std::string dir = (std::filesystem::temp_directory_path() / "selffeed-store-bench").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
  }
  std::printf("| writers | group commit | acknowledged records/s | commit p50 (ms) | commit p99 (ms) | vs 1 writer, no group commit |\n");
  std::printf("|---:|:---:|---:|---:|---:|---:|\n");
  double baseline = 0;
  for (int writers : {1, 8}) {
    for (bool group : {false, true}) {
      RunResult r = run(dir, writers, group, seconds);
      double rate = r.records / r.seconds;
      if (baseline == 0) baseline = rate;
      std::printf("| %d | %s | %.0f | %.2f | %.2f | %.2fx |\n", writers, group ? "on" : "off", rate, r.p50_ms,
                  r.p99_ms, rate / baseline);
      std::fflush(stdout);
    }
  }

  // The server's free-space reserve checks the disk (statvfs) before every group's write.
  std::printf("\n| writers (group commit) | free-space reserve | acknowledged records/s | commit p50 (ms) | commit p99 (ms) | "
              "vs no reserve |\n|---:|:---:|---:|---:|---:|---:|\n");
  for (int writers : {1, 8}) {
    double without = 0;
    for (std::uint64_t reserve : {std::uint64_t{0}, std::uint64_t{256} << 20}) {
      RunResult r = run(dir, writers, /*group_commit=*/true, seconds, reserve);
      double rate = r.records / r.seconds;
      if (reserve == 0) without = rate;
      std::printf("| %d | %s | %.0f | %.2f | %.2f | %.2fx |\n", writers, reserve ? "256 MiB" : "off", rate, r.p50_ms,
                  r.p99_ms, rate / without);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(dir);
}
