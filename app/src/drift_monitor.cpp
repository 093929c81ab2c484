#include "drift_monitor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

// The ratings `wanted` picks: their counts, mean score, and the ROC-AUC of the scores for
// telling up from down once both are there.
template <class Ratings, class Wanted>
DriftMonitor::Thumbs tally(const Ratings& ratings, Wanted wanted) {
  DriftMonitor::Thumbs out;
  std::vector<double> scores;
  std::vector<int> labels;
  for (const auto& r : ratings) {
    if (!wanted(r)) continue;
    scores.push_back(r.score);
    labels.push_back(r.up ? 1 : 0);
    ++(r.up ? out.up : out.down);
    out.mean_score += r.score;
  }
  if (scores.empty()) return out;
  out.mean_score /= static_cast<double>(scores.size());
  out.calibration_error = satisfaction::calibration(scores, labels).expected_error;
  if (out.up > 0 && out.down > 0) out.auc = satisfaction::evaluate_binary(scores, labels, 0.5).auc;
  return out;
}

using nlohmann::json;

json block_to_json(const std::optional<DriftMonitor::Block>& block) {
  if (!block) return nullptr;
  return {{"replies", block->replies},       {"coverage", block->coverage},     {"conflict", block->conflict},
          {"scored", block->scored},         {"mean_score", block->mean_score}, {"score_variance", block->score_variance}};
}

// nullopt for null; kInvalidArgument for anything block_to_json did not write.
Result<std::optional<DriftMonitor::Block>> block_from_json(const json& j) {
  if (j.is_null()) return std::optional<DriftMonitor::Block>();
  DriftMonitor::Block block;
  try {
    block.replies = j.at("replies").get<std::size_t>();
    block.coverage = j.at("coverage").get<std::vector<double>>();
    block.conflict = j.at("conflict").get<double>();
    block.scored = j.at("scored").get<std::size_t>();
    block.mean_score = j.at("mean_score").get<double>();
    block.score_variance = j.at("score_variance").get<double>();
  } catch (const json::exception& e) {
    return invalid_argument_error(std::string("a kept drift reference is not one: ") + e.what());
  }
  if (block.replies == 0) return invalid_argument_error("a kept drift reference has no replies");
  return std::optional<DriftMonitor::Block>(std::move(block));
}

}  // namespace

DriftMonitor::DriftMonitor(Options options, metrics::Registry& metrics) : options_(options), metrics_(metrics) {
  current_.voted.assign(options_.functions.size(), 0);
}

void DriftMonitor::judged(const std::vector<satisfaction::Vote>& votes, std::optional<double> live_score) {
  if (options_.block == 0) return;
  std::lock_guard lock(mutex_);
  for (std::size_t f = 0; f < votes.size() && f < current_.voted.size(); ++f) {
    current_.voted[f] += votes[f] != satisfaction::Vote::kAbstain;
  }
  current_.conflicts += satisfaction::votes_conflict(votes);
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
    references_changed();
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
    references_changed();
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

void DriftMonitor::rated(double score, bool thumbs_up, bool requested) {
  if (options_.thumbs_window == 0) return;
  std::lock_guard lock(mutex_);
  thumbs_.push_back({score, thumbs_up, requested});
  if (thumbs_.size() > options_.thumbs_window) thumbs_.pop_front();
  check_thumbs();
}

void DriftMonitor::rating_changed(double score, bool thumbs_up, bool requested) {
  std::lock_guard lock(mutex_);
  // The same score and flags: any such entry stands for this reply as well as another.
  auto it = std::find_if(thumbs_.rbegin(), thumbs_.rend(), [&](const Rating& r) {
    return r.score == score && r.up != thumbs_up && r.requested == requested;
  });
  if (it == thumbs_.rend()) return;
  it->up = thumbs_up;
  check_thumbs();
}

void DriftMonitor::check_thumbs() {
  const Thumbs all = tally(thumbs_, [](const Rating&) { return true; });
  if (!all.auc) return;
  const double auc = *all.auc;
  const std::size_t up = all.up, down = all.down;
  metrics_.gauge("selffeed_satisfaction_thumbs_auc",
                 "ROC-AUC of the live estimator against the latest explicit thumbs (1: it ranks every thumbs-up "
                 "reply above every thumbs-down one).")
      .set(auc);
  const bool enough = up >= options_.min_thumbs_each && down >= options_.min_thumbs_each;
  set_alert("satisfaction_vs_thumbs", "", enough && auc < options_.min_thumbs_auc, options_.min_thumbs_auc, auc,
            fmt::format("the estimator's ROC-AUC against the last {} thumbs ({} up, {} down) is {:.3f}", up + down, up,
                        down, auc),
            fmt::format("below {:.3f}, it no longer tells the replies the users liked from the others",
                        options_.min_thumbs_auc));
}

void DriftMonitor::references_changed() {
  if (!options_.keep_references) return;
  options_.keep_references(json{{"functions", options_.functions},
                                {"reference", block_to_json(reference_)},
                                {"score_reference", block_to_json(score_reference_)},
                                {"score_version", live_version_}}
                               .dump());
}

Status DriftMonitor::restore_references(std::string_view kept, const std::string& live_version) {
  std::lock_guard lock(mutex_);
  live_version_ = live_version;
  if (kept.empty()) return ok_status();
  const json j = json::parse(kept, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("functions") || !j.contains("reference") || !j.contains("score_reference") ||
      !j.value("score_version", json()).is_string()) {
    return invalid_argument_error("the kept drift references are not what keep_references wrote");
  }
  SELFFEED_ASSIGN_OR_RETURN(std::optional<Block> reference, block_from_json(j["reference"]));
  SELFFEED_ASSIGN_OR_RETURN(std::optional<Block> score_reference, block_from_json(j["score_reference"]));
  if (j["functions"] == json(options_.functions) && (!reference || reference->coverage.size() == options_.functions.size())) {
    reference_ = std::move(reference);
  } else if (reference) {
    log()->info("drift: the kept reference block was counted on other labeling functions; a new one is taken");
  }
  if (j["score_version"] == live_version) score_reference_ = std::move(score_reference);
  log()->info("drift: kept references restored: block {}, score {}", reference_ ? "yes" : "no",
              score_reference_ ? "yes" : "no");
  return ok_status();
}

void DriftMonitor::model_changed(const std::string& version) {
  std::lock_guard lock(mutex_);
  live_version_ = version;
  score_reference_.reset();
  references_changed();
  current_.scored = 0;
  current_.score_sum = current_.score_squares = 0;
  thumbs_.clear();
  set_alert("satisfaction_score", "", false, 0, 0, "the live model changed");
  set_alert("satisfaction_vs_thumbs", "", false, 0, 0, "the live model changed");
}

void DriftMonitor::rebase() {
  std::lock_guard lock(mutex_);
  reference_.reset();
  score_reference_.reset();
  references_changed();
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
  report.thumbs = tally(thumbs_, [](const Rating&) { return true; });
  report.requested_thumbs = tally(thumbs_, [](const Rating& r) { return r.requested; });
  return report;
}

}  // namespace selffeed::app
