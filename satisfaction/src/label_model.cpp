// Dawid-Skene with abstentions: for each labeling function j and true class y, a
// distribution theta_j[y] over its output {abstain, unsatisfied, satisfied}. Functions are
// independent given the class. EM starts from the smoothed majority vote, then alternates
// each example's posterior (E) with theta and the class prior (M).
//
// Modelling abstention per class is what makes one-sided functions useful: a function that
// only ever votes "satisfied" still carries signal through how much more often it fires on
// satisfied replies. (A one-coin model collapses to "everything is satisfied" on them.)
#include <algorithm>
#include <cmath>

#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {
namespace {

constexpr double kSmoothing = 1.0;  // add-one counts in the M step
constexpr double kClamp = 1e-3;

int outcome(Vote v) { return v == Vote::kAbstain ? 0 : v == Vote::kUnsatisfied ? 1 : 2; }

}  // namespace

double majority_vote(std::span<const Vote> votes) {
  double sat = 0, unsat = 0;
  for (Vote v : votes) {
    sat += v == Vote::kSatisfied;
    unsat += v == Vote::kUnsatisfied;
  }
  return (sat + 1) / (sat + unsat + 2);
}

bool votes_conflict(std::span<const Vote> votes) {
  return std::ranges::find(votes, Vote::kSatisfied) != votes.end() &&
         std::ranges::find(votes, Vote::kUnsatisfied) != votes.end();
}

double LabelModel::posterior(std::span<const Vote> votes) const {
  double log_sat = std::log(prior_), log_unsat = std::log(1.0 - prior_);
  for (std::size_t j = 0; j < votes.size() && j < log_theta_.size(); ++j) {
    const int o = outcome(votes[j]);
    log_sat += log_theta_[j][1][o];
    log_unsat += log_theta_[j][0][o];
  }
  return 1.0 / (1.0 + std::exp(log_unsat - log_sat));
}

Result<LabelModel> LabelModel::fit(std::span<const std::vector<Vote>> votes, const LabelModelOptions& options) {
  if (votes.empty()) return invalid_argument_error("the label model needs at least one example");
  const std::size_t m = votes.front().size();
  for (const auto& row : votes) {
    if (row.size() != m) return invalid_argument_error("every example needs a vote from every labeling function");
  }
  LabelModel model;
  model.theta_.assign(m, {});
  std::vector<double> q(votes.size());
  for (std::size_t i = 0; i < votes.size(); ++i) q[i] = majority_vote(votes[i]);
  for (model.iterations_ = 1; model.iterations_ <= options.max_iterations; ++model.iterations_) {
    // M step.
    double mass_sat = 0;
    for (double x : q) mass_sat += x;
    const double n = static_cast<double>(q.size());
    const double prior = std::min(1.0 - kClamp, std::max(kClamp, mass_sat / n));
    double change = std::abs(prior - model.prior_);
    model.prior_ = prior;
    for (std::size_t j = 0; j < m; ++j) {
      double counts[2][3] = {{kSmoothing, kSmoothing, kSmoothing}, {kSmoothing, kSmoothing, kSmoothing}};
      for (std::size_t i = 0; i < votes.size(); ++i) {
        const int o = outcome(votes[i][j]);
        counts[1][o] += q[i];
        counts[0][o] += 1.0 - q[i];
      }
      for (int y = 0; y < 2; ++y) {
        const double total = counts[y][0] + counts[y][1] + counts[y][2];
        for (int o = 0; o < 3; ++o) {
          const double p = counts[y][o] / total;
          change = std::max(change, std::abs(p - model.theta_[j][y][o]));
          model.theta_[j][y][o] = p;
        }
      }
    }
    // E step.
    model.log_theta_ = model.theta_;
    for (auto& function : model.log_theta_) {
      for (auto& outputs : function) {
        for (double& p : outputs) p = std::log(p);
      }
    }
    for (std::size_t i = 0; i < votes.size(); ++i) q[i] = model.posterior(votes[i]);
    if (change < options.tolerance) break;
  }
  // Accuracy of each function where it votes: P(vote == true class | vote).
  model.accuracies_.resize(m);
  for (std::size_t j = 0; j < m; ++j) {
    const auto& t = model.theta_[j];
    const double right = model.prior_ * t[1][2] + (1 - model.prior_) * t[0][1];
    const double voted = model.prior_ * (t[1][1] + t[1][2]) + (1 - model.prior_) * (t[0][1] + t[0][2]);
    model.accuracies_[j] = voted > 0 ? right / voted : 0.5;
  }
  return model;
}

double LabelModel::probability(std::span<const Vote> votes) const { return posterior(votes); }

}  // namespace selffeed::satisfaction
