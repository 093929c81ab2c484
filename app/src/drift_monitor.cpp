#include "drift_monitor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "selffeed/common/log.h"
#include "selffeed/common/records.h"

namespace selffeed::app {
namespace {

// Standard errors a change must reach: at 5, two blocks of the same users differ this much
// (either way) about once in 1.7 million comparisons per statistic.
constexpr double kMinStandardErrors = 5;

auto log() { return SELFFEED_LOGGER("app"); }

// How many standard errors `now` is from `reference`; infinite when neither varies but they
// differ.
double standard_errors(double difference, double standard_error) {
  if (standard_error > 0) return std::abs(difference) / standard_error;
  return difference == 0 ? 0 : std::numeric_limits<double>::infinity();
}

// Two shares of independent samples (pooled two-proportion test).
double share_standard_errors(double reference, std::size_t n_reference, double now, std::size_t n_now) {
  const double n1 = static_cast<double>(n_reference), n2 = static_cast<double>(n_now);
  const double pooled = (reference * n1 + now * n2) / (n1 + n2);
  return standard_errors(now - reference, std::sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)));
}

std::string percent(double share) { return fmt::format("{:.1f}%", 100 * share); }

}  // namespace

DriftMonitor::DriftMonitor(Options options, metrics::Registry& metrics) : options_(options), metrics_(metrics) {
  current_.voted.assign(options_.functions.size(), 0);
}

void DriftMonitor::judged(const std::vector<satisfaction::Vote>& votes, std::optional<double> live_score) {
  if (options_.block == 0) return;
  std::lock_guard lock(mutex_);
  bool satisfied = false, unsatisfied = false;
  for (std::size_t f = 0; f < votes.size() && f < current_.voted.size(); ++f) {
    if (votes[f] == satisfaction::Vote::kAbstain) continue;
    ++current_.voted[f];
    (votes[f] == satisfaction::Vote::kSatisfied ? satisfied : unsatisfied) = true;
  }
  current_.conflicts += satisfied && unsatisfied;
  if (live_score) {
    ++current_.scored;
    current_.score_sum += *live_score;
    current_.score_squares += *live_score * *live_score;
  }
  if (++current_.replies < options_.block) return;
  const Block block = summarise(current_);
  current_ = Counts{.voted = std::vector<std::size_t>(current_.voted.size(), 0)};
  ++blocks_;
  latest_ = block;
  metrics_.gauge("selffeed_labeling_function_conflict_share",
                 "Share of the latest block of judged replies on which two labeling functions disagree.")
      .set(block.conflict);
  compare(block);
}

DriftMonitor::Block DriftMonitor::summarise(const Counts& counts) {
  Block block;
  const double n = static_cast<double>(counts.replies);
  block.replies = counts.replies;
  for (std::size_t voted : counts.voted) block.coverage.push_back(static_cast<double>(voted) / n);
  block.conflict = static_cast<double>(counts.conflicts) / n;
  block.scored = counts.scored;
  if (counts.scored > 0) {
    const double scored = static_cast<double>(counts.scored);
    block.mean_score = counts.score_sum / scored;
    block.score_variance = std::max(0.0, counts.score_squares / scored - block.mean_score * block.mean_score);
  }
  return block;
}

void DriftMonitor::compare(const Block& block) {
  if (!reference_) {
    reference_ = block;
    log()->info("drift: reference taken on {} judged replies", block.replies);
  } else {
    const std::vector<std::string>& functions = options_.functions;
    for (std::size_t f = 0; f < functions.size(); ++f) {
      const double was = reference_->coverage[f], is = block.coverage[f];
      const bool firing = std::abs(is - was) >= options_.min_shift &&
                          share_standard_errors(was, reference_->replies, is, block.replies) >= kMinStandardErrors;
      set_alert("labeling_function_coverage", functions[f], firing, was, is,
                fmt::format("labeling function {} votes on {} of judged replies, {} in the reference block",
                            functions[f], percent(is), percent(was)),
                "the users talk otherwise than they did");
    }
    const double was = reference_->conflict, is = block.conflict;
    set_alert("labeling_function_conflict", "",
              std::abs(is - was) >= options_.min_shift &&
                  share_standard_errors(was, reference_->replies, is, block.replies) >= kMinStandardErrors,
              was, is,
              fmt::format("labeling functions disagree on {} of judged replies, {} in the reference block", percent(is),
                          percent(was)));
  }
  // The estimator's reference: a block scored by the live model for at least a quarter of
  // its replies (a trial scores the rest), after the last model change.
  if (block.scored * 4 < block.replies) return;
  if (!score_reference_) {
    score_reference_ = block;
    return;
  }
  const double was = score_reference_->mean_score, is = block.mean_score;
  const double standard_error = std::sqrt(score_reference_->score_variance / static_cast<double>(score_reference_->scored) +
                                          block.score_variance / static_cast<double>(block.scored));
  set_alert("satisfaction_score", "",
            std::abs(is - was) >= options_.min_shift && standard_errors(is - was, standard_error) >= kMinStandardErrors,
            was, is,
            fmt::format("the estimator's mean P(satisfied) is {:.3f}, {:.3f} in its reference block", is, was),
            "the users are less or more satisfied, or talk otherwise than the estimator learned");
}

void DriftMonitor::rated(double score, bool thumbs_up) {
  if (options_.thumbs_window == 0) return;
  std::lock_guard lock(mutex_);
  thumbs_.emplace_back(score, thumbs_up);
  if (thumbs_.size() > options_.thumbs_window) thumbs_.pop_front();
  check_thumbs();
}

void DriftMonitor::check_thumbs() {
  std::vector<double> scores;
  std::vector<int> labels;
  for (const auto& [score, up] : thumbs_) {
    scores.push_back(score);
    labels.push_back(up ? 1 : 0);
  }
  const std::size_t up = static_cast<std::size_t>(std::count(labels.begin(), labels.end(), 1));
  const std::size_t down = labels.size() - up;
  if (up == 0 || down == 0) return;
  const double auc = satisfaction::evaluate_binary(scores, labels, 0.5).auc;
  thumbs_auc_ = auc;
  metrics_.gauge("selffeed_satisfaction_thumbs_auc",
                 "ROC-AUC of the live estimator against the latest explicit thumbs (1: it ranks every thumbs-up "
                 "reply above every thumbs-down one).")
      .set(auc);
  const bool enough = up >= options_.min_thumbs_each && down >= options_.min_thumbs_each;
  set_alert("satisfaction_vs_thumbs", "", enough && auc < options_.min_thumbs_auc, options_.min_thumbs_auc, auc,
            fmt::format("the estimator's ROC-AUC against the last {} thumbs ({} up, {} down) is {:.3f}", labels.size(),
                        up, down, auc),
            fmt::format("below {:.3f}, it no longer tells the replies the users liked from the others",
                        options_.min_thumbs_auc));
}

void DriftMonitor::model_changed() {
  std::lock_guard lock(mutex_);
  score_reference_.reset();
  current_.scored = 0;
  current_.score_sum = current_.score_squares = 0;
  thumbs_.clear();
  thumbs_auc_.reset();
  set_alert("satisfaction_score", "", false, 0, 0, "the live model changed");
  set_alert("satisfaction_vs_thumbs", "", false, 0, 0, "the live model changed");
}

void DriftMonitor::rebase() {
  std::lock_guard lock(mutex_);
  reference_.reset();
  score_reference_.reset();
  current_ = Counts{.voted = std::vector<std::size_t>(current_.voted.size(), 0)};
  std::vector<std::pair<std::string, std::string>> clearing;
  for (const auto& [key, alert] : alerts_) {
    if (alert.name != "satisfaction_vs_thumbs") clearing.push_back(key);
  }
  for (const auto& [name, subject] : clearing) set_alert(name, subject, false, 0, 0, "the operator rebased");
}

void DriftMonitor::set_alert(const std::string& name, const std::string& subject, bool firing, double reference,
                             double now, const std::string& measurement, std::string_view meaning) {
  const auto key = std::make_pair(name, subject);
  const auto active = alerts_.find(key);
  const metrics::Labels labels = {{"alert", name}, {"subject", subject}};
  if (firing) {
    const std::string message = meaning.empty() ? measurement : fmt::format("{}: {}", measurement, meaning);
    if (active != alerts_.end()) {
      active->second.reference = reference;
      active->second.now = now;
      active->second.message = message;
      return;
    }
    alerts_.emplace(key, Alert{name, subject, reference, now, message, unix_millis()});
    metrics_.gauge("selffeed_alert", kAlertGaugeHelp, labels).set(1);
    metrics_.counter("selffeed_alerts_total", "Alerts fired, by alert.", {{"alert", name}}).inc();
    log()->warn("alert {}{}: {}", name, subject.empty() ? "" : " " + subject, message);
  } else if (active != alerts_.end()) {
    alerts_.erase(active);
    metrics_.gauge("selffeed_alert", kAlertGaugeHelp, labels).set(0);
    log()->info("alert {}{} cleared: {}", name, subject.empty() ? "" : " " + subject, measurement);
  }
}

DriftMonitor::Report DriftMonitor::report() const {
  std::lock_guard lock(mutex_);
  Report report{.functions = options_.functions,
                .blocks = blocks_, .reference = reference_, .score_reference = score_reference_, .latest = latest_};
  for (const auto& [key, alert] : alerts_) report.alerts.push_back(alert);
  for (const auto& [score, up] : thumbs_) {
    (up ? report.thumbs.up : report.thumbs.down) += 1;
    report.thumbs.mean_score += score;
  }
  if (!thumbs_.empty()) report.thumbs.mean_score /= static_cast<double>(thumbs_.size());
  report.thumbs.auc = thumbs_auc_;
  return report;
}

}  // namespace selffeed::app
