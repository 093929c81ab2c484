// The users' half of the promotion decision inside `selffeed serve`: every so often it
// asks the ModelManager to judge the trial in progress (ModelManager::judge_trial), which
// promotes the version on trial or rejects it once both sides have answered enough
// conversations. Verdicts are counted in /metrics and logged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "model_manager.h"
#include "selffeed/common/metrics.h"

namespace selffeed::app {

struct TrialJudgeOptions {
  std::uint64_t min_conversations = 200;  // on each side, since the trial began
  std::chrono::seconds check_every{60};
};

class TrialJudge {
 public:
  TrialJudge(TrialJudgeOptions options, ModelManager& models, metrics::Registry& metrics);
  ~TrialJudge();  // stops; a verdict in progress finishes first

 private:
  void run();

  const TrialJudgeOptions options_;
  ModelManager& models_;
  metrics::Registry& registry_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace selffeed::app
