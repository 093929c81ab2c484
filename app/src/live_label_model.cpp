#include "live_label_model.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "selffeed/common/log.h"

namespace selffeed::app {
namespace {
constexpr int kFitterNice = 10;
}  // namespace

LiveLabelModel::LiveLabelModel(Options options, metrics::Registry& metrics)
    : options_(options), metrics_(metrics) {
  if (options_.window > 0) fitter_ = std::jthread([this](std::stop_token stop) { fit_when_due(stop); });
}

// The jthread asks the fitter to stop, which wakes its wait, and joins it.
LiveLabelModel::~LiveLabelModel() = default;

void LiveLabelModel::add(std::vector<satisfaction::Vote> votes) {
  if (options_.window == 0) return;
  std::lock_guard lock(mutex_);
  window_.push_back(std::move(votes));
  if (window_.size() > options_.window) window_.pop_front();
  if (++seen_ - seen_at_last_fit_ >= options_.refit_every && window_.size() >= options_.min_replies) {
    due_.notify_one();
  }
}

std::optional<LiveLabelModel::Fit> LiveLabelModel::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

std::optional<LiveLabelModel::Fit> LiveLabelModel::refit() {
  std::vector<std::vector<satisfaction::Vote>> rows;
  Fit fit;
  {
    std::lock_guard lock(mutex_);
    if (window_.size() < options_.min_replies) return std::nullopt;
    rows.assign(window_.begin(), window_.end());
    fit.seen = seen_at_last_fit_ = seen_;
  }
  // EM outside the lock: the inference worker keeps adding.
  Result<satisfaction::LabelModel> model = satisfaction::LabelModel::fit(rows);
  if (!model.ok()) {
    SELFFEED_LOGGER("app")->warn("live label model: {}", model.status().to_string());
    return std::nullopt;
  }
  const std::vector<std::string>& functions = options_.functions;
  constexpr double kOneClass = 0.02;
  fit.replies = rows.size();
  fit.prior = model->prior();
  fit.degenerate = fit.prior < kOneClass || fit.prior > 1 - kOneClass;
  for (std::size_t f = 0; f < functions.size(); ++f) {
    std::size_t voted = 0;
    for (const auto& row : rows) voted += f < row.size() && row[f] != satisfaction::Vote::kAbstain;
    fit.functions.push_back({.name = functions[f],
                             .coverage = static_cast<double>(voted) / static_cast<double>(rows.size()),
                             .accuracy = model->accuracies()[f]});
  }
  // Two fits can overlap (the thread's and an admin's refit=1): only the one of the later
  // window is published, so that the gauges never go back to an older one.
  std::lock_guard lock(mutex_);
  if (latest_ && latest_->seen > fit.seen) return fit;
  latest_ = fit;
  publish(fit);
  return fit;
}

void LiveLabelModel::publish(const Fit& fit) {
  for (const FunctionFit& function : fit.functions) {
    const metrics::Labels labels = {{"function", function.name}};
    if (!fit.degenerate) {
      metrics_.gauge("selffeed_labeling_function_accuracy",
                     "Each labeling function's accuracy as the label model learns it, without labels, on the "
                     "latest window of judged replies.",
                     labels)
          .set(function.accuracy);
    }
    metrics_.gauge("selffeed_labeling_function_coverage",
                   "Share of the latest window of judged replies each labeling function voted on.", labels)
        .set(function.coverage);
  }
  if (!fit.degenerate) {
    metrics_.gauge("selffeed_label_model_prior", "P(satisfied) as the label model learns it on the latest window.")
        .set(fit.prior);
  }
}

void LiveLabelModel::fit_when_due(std::stop_token stop) {
  // Below the inference worker, as the periodic trainer's child is: a fit of 10,000
  // replies takes a fifth of a second of a core (BENCHMARKS.md).
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kFitterNice);
  while (true) {
    {
      std::unique_lock lock(mutex_);
      const bool due = due_.wait(lock, stop, [&] {
        return seen_ - seen_at_last_fit_ >= options_.refit_every && window_.size() >= options_.min_replies;
      });
      if (!due) return;  // stopping
    }
    refit();
  }
}

}  // namespace selffeed::app
