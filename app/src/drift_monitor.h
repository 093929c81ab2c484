// Alerts when the users, or the estimator's view of them, drift away from what they were:
// peers.md's feature 9. The judged replies are counted in consecutive blocks of `block`;
// the first block after the start (or after an operator accepts a drift, rebase()) is the
// reference, and every later block is compared with it:
//   - labeling_function_coverage (one per function): the share of replies it votes on;
//   - labeling_function_conflict: the share on which two functions disagree;
//   - satisfaction_score: the estimator's mean P(satisfied) on the live model's replies.
//     Its reference is retaken after each model change: a new estimator scores otherwise.
// A comparison alerts when the change is at least `min_shift` and at least 5 standard
// errors (so sampling noise alone almost never fires it), and clears when a later block is
// back. Coverage counts the functions' votes, which do not depend on the model, so it is
// exact and says that the users talk otherwise; the label model's learned accuracies are
// too unsure to alert on (EVALUATION.md). Apart from the blocks:
//   - satisfaction_vs_thumbs: on the last `thumbs_window` explicit thumbs (the estimator's
//     dev set in the wild), the estimator's ROC-AUC against them falls below
//     `min_thumbs_auc`, once there are `min_thumbs_each` of each. The report also reads
//     the AUC on the thumbs the bot asked for alone (a random sample of the judged replies,
//     where the others are those users chose to rate). A thumbs given before the reply
//     comes once the reply is judged (ChatEngine, on any connection); a changed mind
//     replaces the rating.
// An alert is the gauge selffeed_alert{alert,subject} at 1 (0 once it clears), a count in
// selffeed_alerts_total{alert}, a warning in the log and an entry of report().
// Thread-safe.
//
//   DriftMonitor drift({.block = 2000}, registry);
//   drift.judged(votes, score);        // the inference worker, per judged reply
//   drift.rated(score, thumbs_up, requested);  // per thumbs on a reply the live estimator scored
//   drift.model_changed(version);      // on a swap
//   DriftMonitor::Report now = drift.report();  // GET /admin/alerts
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "selffeed/common/metrics.h"
#include "selffeed/common/status.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::app {

// The help of the gauge selffeed_alert{alert,subject}, which other alerts share
// (ModelManager's live_model_learned_from_deleted_users).
inline constexpr const char* kAlertGaugeHelp =
    "1 while the alert is firing, 0 once it cleared (GET /admin/alerts says why).";

class DriftMonitor {
 public:
  struct Options {
    std::size_t block = 2000;   // judged replies per comparison; 0: no block alerts
    double min_shift = 0.05;    // the smallest change of a share or of the mean score that alerts
    std::size_t thumbs_window = 1000;  // the latest thumbs the AUC is computed on; 0: none
    std::size_t min_thumbs_each = 50;  // up and down, before the AUC may alert
    double min_thumbs_auc = 0.5;
    // The labeling functions' names, in the order of the votes judged() gets.
    std::vector<std::string> functions = satisfaction::names_of(satisfaction::labeling_functions());
    // Called with the references as text (restore_references takes it back) each time one
    // is taken or dropped, so that a restart does not take a new one in the middle of a
    // drift and forget it; the server keeps it in the store. None when empty.
    std::function<void(const std::string&)> keep_references;
  };
  // What one block of judged replies looked like.
  struct Block {
    std::size_t replies = 0;
    std::vector<double> coverage;  // per labeling function, in Options::functions order
    double conflict = 0;
    std::size_t scored = 0;  // replies the live model's estimator scored
    double mean_score = 0;
    double score_variance = 0;
  };
  struct Alert {
    std::string name;     // labeling_function_coverage, labeling_function_conflict, ...
    std::string subject;  // the labeling function, or empty
    double reference = 0;
    double now = 0;
    std::string message;  // what changed, in words
    std::int64_t since_ms = 0;
  };
  struct Thumbs {
    std::size_t up = 0;
    std::size_t down = 0;
    std::optional<double> auc;  // once there are some of each
    double mean_score = 0;      // of the rated replies
    // satisfaction::calibration's expected error of the scores against the thumbs, once
    // there are any (telling for the requested ones: a random sample of the judged replies).
    std::optional<double> calibration_error;
  };
  struct Report {
    std::vector<std::string> functions;  // Options::functions
    std::uint64_t blocks = 0;  // completed since the start
    std::optional<Block> reference;
    std::optional<Block> score_reference;  // the live estimator's; nullopt: being retaken
    std::optional<Block> latest;
    std::vector<Alert> alerts;  // active ones
    Thumbs thumbs;
    Thumbs requested_thumbs;  // of `thumbs`, those the bot asked for (rating requests)
  };

  DriftMonitor(Options options, metrics::Registry& metrics);

  // One reply the labeling functions voted on; `live_score` is the live model's P(satisfied)
  // (nullopt when another model, a trial, scored it).
  void judged(const std::vector<satisfaction::Vote>& votes, std::optional<double> live_score);
  // Thumbs on a reply the live model's estimator scored `score`; `requested`: the bot had
  // asked the user to rate that answer.
  void rated(double score, bool thumbs_up, bool requested);
  // The user changed their mind about a reply rated() was given: its rating, if still in
  // the window, becomes `thumbs_up`.
  void rating_changed(double score, bool thumbs_up, bool requested);
  // The live model is now `version`: its estimator's scores and thumbs start again.
  void model_changed(const std::string& version);
  // Takes back what keep_references was given, before the first reply, with the live
  // model's version: the block reference when it was taken on the same labeling functions,
  // the score reference when on the same version. kInvalidArgument (and nothing restored)
  // for text keep_references did not write.
  Status restore_references(std::string_view kept, const std::string& live_version);
  // The operator accepts the present: the next block becomes the reference, and the block
  // alerts clear (satisfaction_vs_thumbs stays: it compares with no reference).
  void rebase();
  Report report() const;

 private:
  struct Counts {
    std::size_t replies = 0;
    std::vector<std::size_t> voted;
    std::size_t conflicts = 0;
    std::size_t scored = 0;
    double score_sum = 0;
    double score_squares = 0;
  };
  static Block summarise(const Counts& counts);
  void references_changed();  // under mutex_: Options::keep_references
  void compare(const Block& block);  // under mutex_
  void check_thumbs();               // under mutex_
  // Raises or clears one alert; under mutex_. `measurement` says what was measured, and
  // `meaning`, added to it while the alert fires, what that says.
  void set_alert(const std::string& name, const std::string& subject, bool firing, double reference, double now,
                 const std::string& measurement, std::string_view meaning = {});

  const Options options_;
  metrics::Registry& metrics_;
  mutable std::mutex mutex_;
  Counts current_;
  std::uint64_t blocks_ = 0;
  std::optional<Block> reference_;
  std::optional<Block> score_reference_;
  std::string live_version_;  // whose estimator score_reference_ is
  std::optional<Block> latest_;
  std::map<std::pair<std::string, std::string>, Alert> alerts_;  // active, by (name, subject)
  struct Rating {
    double score = 0;
    bool up = false;
    bool requested = false;
  };
  std::deque<Rating> thumbs_;  // oldest first
};

}  // namespace selffeed::app
