#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {
namespace {

// ROC-AUC of `1 - score` for the unsatisfied class: the probability that a random
// unsatisfied example gets a lower P(satisfied) than a random satisfied one (ties 1/2).
double auc_unsatisfied(std::span<const double> scores, std::span<const int> labels) {
  // Rank-sum (Mann-Whitney) with average ranks for ties.
  const std::vector<double> rank = average_ranks(scores);
  double sat = 0, unsat = 0, rank_sum_sat = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == 1) {
      ++sat;
      rank_sum_sat += rank[i];
    } else {
      ++unsat;
    }
  }
  if (sat == 0 || unsat == 0) return 0.5;
  // Satisfied examples should rank high: U counts (unsat, sat) pairs ordered correctly.
  return (rank_sum_sat - sat * (sat + 1) / 2.0) / (sat * unsat);
}

}  // namespace

std::vector<double> average_ranks(std::span<const double> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && values[order[j]] == values[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
    for (std::size_t k = i; k < j; ++k) rank[order[k]] = mean_rank;
    i = j;
  }
  return rank;
}

BinaryMetrics evaluate_binary(std::span<const double> scores, std::span<const int> labels, double threshold) {
  BinaryMetrics m;
  m.examples = scores.size();
  m.threshold = threshold;
  double tp = 0, fp = 0, fn = 0, correct = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool predicted_unsat = scores[i] < threshold;
    const bool unsat = labels[i] == 0;
    tp += predicted_unsat && unsat;
    fp += predicted_unsat && !unsat;
    fn += !predicted_unsat && unsat;
    correct += predicted_unsat == unsat;
  }
  m.precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  m.recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
  m.accuracy = scores.empty() ? 0 : correct / static_cast<double>(scores.size());
  m.ask_rate = scores.empty() ? 0 : (tp + fp) / static_cast<double>(scores.size());
  m.auc = auc_unsatisfied(scores, labels);
  return m;
}

double best_threshold(std::span<const double> scores, std::span<const int> labels, double max_ask_rate) {
  std::vector<double> candidates(scores.begin(), scores.end());
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  if (candidates.empty()) return 0.5;
  double best = candidates.front(), best_f1 = 0;  // "score < lowest score" flags nothing: F1 0
  // "score < t" predicts unsatisfied, so thresholds just above each distinct score.
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    double t = i + 1 < candidates.size() ? (candidates[i] + candidates[i + 1]) / 2 : candidates[i] + 1e-9;
    const BinaryMetrics m = evaluate_binary(scores, labels, t);
    if (m.ask_rate > max_ask_rate) break;  // thresholds only rise from here
    if (m.f1 > best_f1) {
      best_f1 = m.f1;
      best = t;
    }
  }
  return best;
}

Calibration calibration(std::span<const double> scores, std::span<const int> labels, int bins) {
  std::vector<CalibrationBin> all(static_cast<std::size_t>(std::max(bins, 1)));
  const double width = 1.0 / static_cast<double>(all.size());
  for (std::size_t b = 0; b < all.size(); ++b) {
    all[b].low = static_cast<double>(b) * width;
    all[b].high = b + 1 == all.size() ? 1.0 : static_cast<double>(b + 1) * width;
  }
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const double score = std::clamp(scores[i], 0.0, 1.0);
    CalibrationBin& bin = all[std::min(all.size() - 1, static_cast<std::size_t>(score / width))];
    ++bin.examples;
    bin.mean_score += score;
    bin.satisfied_share += labels[i] == 1 ? 1 : 0;
  }
  Calibration out;
  for (CalibrationBin& bin : all) {
    if (bin.examples == 0) continue;
    const double n = static_cast<double>(bin.examples);
    bin.mean_score /= n;
    bin.satisfied_share /= n;
    out.expected_error += n / static_cast<double>(scores.size()) * std::abs(bin.mean_score - bin.satisfied_share);
    out.bins.push_back(bin);
  }
  return out;
}

BootstrapInterval group_bootstrap(std::span<const std::size_t> group_of, int resamples, std::uint64_t seed,
                                  const std::function<double(std::span<const std::size_t>)>& statistic) {
  std::size_t groups = 0;
  for (std::size_t g : group_of) groups = std::max(groups, g + 1);
  if (groups == 0 || resamples <= 0) return {};
  std::vector<std::vector<std::size_t>> members(groups);
  for (std::size_t i = 0; i < group_of.size(); ++i) members[group_of[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> draw(0, groups - 1);
  std::vector<double> values;
  std::vector<std::size_t> sample;
  for (int r = 0; r < resamples; ++r) {
    sample.clear();
    for (std::size_t k = 0; k < groups; ++k) {
      const std::vector<std::size_t>& group = members[draw(rng)];
      sample.insert(sample.end(), group.begin(), group.end());
    }
    values.push_back(statistic(sample));
  }
  std::sort(values.begin(), values.end());
  auto percentile = [&](double q) {
    return values[static_cast<std::size_t>(std::lround(q * static_cast<double>(values.size() - 1)))];
  };
  const double above = static_cast<double>(std::count_if(values.begin(), values.end(), [](double v) { return v > 0; }));
  return {percentile(0.025), percentile(0.975), above / static_cast<double>(values.size())};
}

}  // namespace selffeed::satisfaction
