// The periodic trainer inside `selffeed serve`: when enough new examples were harvested
// (or enough time passed with at least one), it runs `selffeed retrain` as a child
// process on a bounded thread budget (one LibTorch and one OpenBLAS thread, nice 10), so
// serving keeps its latency, then hands the new bundle to the promotion gate. A live model
// that learned from a deleted user's examples is retrained at once (retrain then starts
// from a version that did not). While a model is on trial it waits for the verdict. Its state and last run are in /metrics and
// the log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat_engine.h"
#include "model_manager.h"
#include "selffeed/common/metrics.h"

namespace selffeed::app {

struct PeriodicTrainerOptions {
  std::size_t every_examples = 0;  // 0: no example trigger
  std::chrono::minutes every_minutes{0};  // 0: no time trigger
  std::string selffeed_binary;     // this executable
  std::string store_dir;
  std::string runs_dir;            // one run directory per retraining
  std::string personachat;         // the HH training file
  std::vector<std::string> extra_args;  // more `retrain` flags (steps, lr, ...)
};

class PeriodicTrainer {
 public:
  PeriodicTrainer(PeriodicTrainerOptions options, ChatEngine& engine, ModelManager& models,
                  metrics::Registry& metrics);
  ~PeriodicTrainer();  // stops; a retraining in progress is killed

 private:
  void run();
  bool due(std::uint64_t harvested_now, std::chrono::steady_clock::time_point now) const;
  void retrain_once(std::uint64_t harvested_now);
  std::uint64_t harvested() const;

  const PeriodicTrainerOptions options_;
  ChatEngine& engine_;
  ModelManager& models_;
  metrics::Gauge& state_;
  metrics::Gauge& last_examples_;
  metrics::Gauge& last_run_time_;
  metrics::Registry& registry_;

  std::uint64_t harvested_at_last_run_ = 0;
  // The live version last retrained because it learned from a deleted user's examples:
  // each such version is retrained once, new examples or not.
  std::string retrained_to_forget_;
  std::chrono::steady_clock::time_point last_run_;
  int runs_ = 0;
  std::atomic<int> child_pid_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace selffeed::app
