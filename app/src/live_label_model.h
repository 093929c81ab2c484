// The label model on live traffic: the labeling functions' votes on the replies the server
// judges, the last `window` of them, refitted without labels (satisfaction::LabelModel,
// Dawid-Skene EM) every `refit_every` new ones on a thread of its own, so that each
// function's accuracy is re-estimated as the users change. What the offline label model
// learned on the ConvAI2 pool is one measurement; this is the running one: a function whose
// live accuracy or coverage moves away from `selffeed lf-report`'s says the users now talk
// otherwise than the estimator learned. Coverage is counted, so it is exact; accuracy is
// what EM learns, as unsure as the label model offline (EVALUATION.md). Gauges
// selffeed_labeling_function_accuracy, selffeed_labeling_function_coverage and
// selffeed_label_model_prior carry the latest fit.
// Thread-safe.
//
//   LiveLabelModel live({.window = 10000}, registry);
//   live.add(votes);                  // the inference worker, per judged reply
//   std::optional<LiveLabelModel::Fit> fit = live.latest();  // the admin API
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "selffeed/common/metrics.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::app {

class LiveLabelModel {
 public:
  struct Options {
    std::size_t window = 10000;    // the most recent judged replies kept; 0: off
    std::size_t refit_every = 500;  // new replies between fits
    // No fit on fewer: on synthetic votes of known accuracy (0.9 / 0.7 / 0.6, tests) EM ends
    // with every reply in one class on 200-500 replies, and is within a few points from
    // about 4,000.
    std::size_t min_replies = 2000;
    // The labeling functions' names, in the order of the votes add() gets.
    std::vector<std::string> functions = satisfaction::names_of(satisfaction::labeling_functions());
  };
  struct FunctionFit {
    std::string name;
    double coverage = 0;  // share of the window's replies it voted on
    double accuracy = 0;  // learned P(its vote is right | it voted)
  };
  struct Fit {
    std::size_t replies = 0;   // in the window it was fitted on
    std::uint64_t seen = 0;    // replies added since the start, when it was fitted
    double prior = 0;          // learned P(satisfied)
    // EM put nearly every reply in one class (prior below 0.02 or above 0.98): the
    // accuracies say nothing, and the accuracy gauges keep their last values.
    bool degenerate = false;
    std::vector<FunctionFit> functions;  // in Options::functions order
  };

  LiveLabelModel(Options options, metrics::Registry& metrics);
  ~LiveLabelModel();  // stops the fitting thread
  LiveLabelModel(const LiveLabelModel&) = delete;
  LiveLabelModel& operator=(const LiveLabelModel&) = delete;

  // The votes on one judged reply (one per labeling function).
  void add(std::vector<satisfaction::Vote> votes);
  // The latest fit, or nullopt before the first.
  std::optional<Fit> latest() const;
  // Fits the window now, on the calling thread, and publishes it (nullopt: too few replies).
  std::optional<Fit> refit();

 private:
  void fit_when_due(std::stop_token stop);
  void publish(const Fit& fit);  // the gauges; under mutex_

  const Options options_;
  metrics::Registry& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable_any due_;
  std::deque<std::vector<satisfaction::Vote>> window_;
  std::uint64_t seen_ = 0;
  std::uint64_t seen_at_last_fit_ = 0;
  std::optional<Fit> latest_;
  std::jthread fitter_;  // last: it uses the members above
};

}  // namespace selffeed::app
