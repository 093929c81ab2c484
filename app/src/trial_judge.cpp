#include "trial_judge.h"

#include "selffeed/common/log.h"

namespace selffeed::app {
namespace {

spdlog::logger* log() { return SELFFEED_LOGGER("models"); }

metrics::Counter& verdicts(metrics::Registry& r, const char* outcome) {
  return r.counter("selffeed_trial_verdicts_total", "Trials the users decided, by outcome.", {{"outcome", outcome}});
}

}  // namespace

TrialJudge::TrialJudge(TrialJudgeOptions options, ModelManager& models, metrics::Registry& metrics)
    : options_(options), models_(models), registry_(metrics) {
  verdicts(registry_, "promoted");
  verdicts(registry_, "rejected");
  thread_ = std::thread([this] { run(); });
}

TrialJudge::~TrialJudge() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void TrialJudge::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.check_every, [&] { return stopping_; });
      if (stopping_) return;
    }
    auto verdict = models_.judge_trial(options_.min_conversations);
    if (!verdict.ok()) {
      log()->error("judging the trial failed: {}", verdict.status().to_string());
    } else if (*verdict) {
      verdicts(registry_, (*verdict)->promoted ? "promoted" : "rejected").inc();
    }
  }
}

}  // namespace selffeed::app
