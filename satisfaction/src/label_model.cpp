// One-coin Dawid-Skene: every labeling function j is right with probability a_j whatever
// the true class, abstains independently of it, and functions are independent given the
// class. EM alternates the posterior of each example's label (E) with a_j and the prior (M).
#include <cmath>

#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {
namespace {

constexpr double kClamp = 1e-4;

double clamp01(double p) { return std::min(1.0 - kClamp, std::max(kClamp, p)); }

double posterior(std::span<const Vote> votes, const std::vector<double>& accuracies, double prior) {
  double log_sat = std::log(prior), log_unsat = std::log(1.0 - prior);
  for (std::size_t j = 0; j < votes.size() && j < accuracies.size(); ++j) {
    if (votes[j] == Vote::kAbstain) continue;
    const double right = std::log(accuracies[j]), wrong = std::log(1.0 - accuracies[j]);
    log_sat += votes[j] == Vote::kSatisfied ? right : wrong;
    log_unsat += votes[j] == Vote::kUnsatisfied ? right : wrong;
  }
  return 1.0 / (1.0 + std::exp(log_unsat - log_sat));
}

}  // namespace

Result<LabelModel> LabelModel::fit(std::span<const std::vector<Vote>> votes, const LabelModelOptions& options) {
  if (votes.empty()) return invalid_argument_error("the label model needs at least one example");
  const std::size_t m = votes.front().size();
  for (const auto& row : votes) {
    if (row.size() != m) return invalid_argument_error("every example needs a vote from every labeling function");
  }
  LabelModel model;
  model.accuracies_.assign(m, options.initial_accuracy);
  std::vector<double> q(votes.size());
  for (model.iterations_ = 1; model.iterations_ <= options.max_iterations; ++model.iterations_) {
    for (std::size_t i = 0; i < votes.size(); ++i) q[i] = posterior(votes[i], model.accuracies_, model.prior_);
    double change = 0;
    for (std::size_t j = 0; j < m; ++j) {
      double right = 0, seen = 0;
      for (std::size_t i = 0; i < votes.size(); ++i) {
        if (votes[i][j] == Vote::kAbstain) continue;
        right += votes[i][j] == Vote::kSatisfied ? q[i] : 1.0 - q[i];
        seen += 1;
      }
      // A function that never votes keeps its prior accuracy and has no effect.
      double a = seen > 0 ? clamp01(right / seen) : options.initial_accuracy;
      change = std::max(change, std::abs(a - model.accuracies_[j]));
      model.accuracies_[j] = a;
    }
    double prior = 0;
    for (double x : q) prior += x;
    prior = clamp01(prior / static_cast<double>(q.size()));
    change = std::max(change, std::abs(prior - model.prior_));
    model.prior_ = prior;
    if (change < options.tolerance) break;
  }
  return model;
}

double LabelModel::probability(std::span<const Vote> votes) const { return posterior(votes, accuracies_, prior_); }

}  // namespace selffeed::satisfaction
