// Which replies should the server ask its users to rate? A simulation on the ConvAI2
// ratings, train and valid splits only (never test), for rotations 0-3 of the folds: a
// budget of k ratings (k = the train split's contested replies, those the labeling
// functions disagree on) is spent on
//   - the contested replies,
//   - k replies drawn at random (the mean over --draws draws),
//   - the k replies whose label-model posterior is nearest the weak labels' cut,
// and a bag-of-words naive Bayes learns from them, scored by ROC-AUC on the rated valid
// replies. Two settings: the ratings alone, and the ratings in place of the weak labels of
// those replies among every train reply's weak label (the label model's posterior, cut so
// that 36% are unsatisfied, the rated share), as retraining mixes thumbs with weak labels.
// Naive Bayes stands in for the estimator, whose training takes minutes a run. Prints a
// Markdown table for EVALUATION.md.
//
//   rating_choice_eval --labelled data_volunteers.json [--labelled ...] --pool export_*.json ...
//                      [--draws 50]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/trainer/trainer.h"

using namespace selffeed;
using satisfaction::SatisfactionInput;
using Indices = std::vector<std::size_t>;

namespace {

constexpr double kUnsatisfiedShare = 0.36;  // of the rated ConvAI2 replies

struct Rotation {
  std::vector<const trainer::SatisfactionExample*> train, valid;
  std::vector<double> posterior;  // the label model's, per train reply
  double cut = 0;                 // weak label 1 at or above it
  Indices contested;
};

double valid_auc(const Rotation& r, const std::vector<int>& labels, const Indices& rows) {
  std::vector<SatisfactionInput> inputs;
  std::vector<int> y;
  for (std::size_t i : rows) {
    inputs.push_back(r.train[i]->input);
    y.push_back(labels[i]);
  }
  const auto nb = satisfaction::NaiveBayes::fit(inputs, y);
  std::vector<double> scores;
  std::vector<int> truth;
  for (const auto* e : r.valid) {
    scores.push_back(nb.probability(e->input));
    truth.push_back(e->label);
  }
  return satisfaction::evaluate_binary(scores, truth, 0.5).auc;
}

// The ratings alone: naive Bayes on the rated replies only.
double ratings_alone(const Rotation& r, const Indices& rated) {
  std::vector<int> labels(r.train.size());
  for (std::size_t i : rated) labels[i] = r.train[i]->label;
  return valid_auc(r, labels, rated);
}

// Every train reply, weakly labelled, the rated ones by their rating.
double ratings_and_weak_labels(const Rotation& r, const Indices& rated) {
  std::vector<int> labels(r.train.size());
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = r.posterior[i] >= r.cut ? 1 : 0;
  for (std::size_t i : rated) labels[i] = r.train[i]->label;
  Indices all(r.train.size());
  std::iota(all.begin(), all.end(), 0);
  return valid_auc(r, labels, all);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> labelled, pool;
  int draws = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--labelled" && i + 1 < argc) labelled.push_back(argv[++i]);
    else if (flag == "--draws" && i + 1 < argc) draws = std::max(1, std::stoi(argv[++i]));
    else if (flag == "--pool") {
      while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) pool.push_back(argv[++i]);
    }
  }
  if (labelled.empty() || pool.empty()) {
    std::fprintf(stderr, "usage: rating_choice_eval --labelled FILE... --pool FILE... [--draws 50]\n");
    return 2;
  }
  std::printf("| rotation | train | contested (k) | alone: contested | alone: random | alone: nearest the cut "
              "| with weak labels: none | contested | random | nearest the cut |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  double sums[7] = {};
  const int rotations = 4;
  for (int rotation = 0; rotation < rotations; ++rotation) {
    auto d = trainer::load_satisfaction_data(labelled, pool, rotation);
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", d.status().to_string().c_str());
      return 1;
    }
    auto label_model = trainer::fit_label_model(*d);
    if (!label_model.ok()) {
      std::fprintf(stderr, "%s\n", label_model.status().to_string().c_str());
      return 1;
    }
    Rotation r;
    for (const auto& e : d->labelled) {
      if (e.split == trainer::Split::kTrain) r.train.push_back(&e);
      if (e.split == trainer::Split::kValid) r.valid.push_back(&e);
    }
    for (std::size_t i = 0; i < r.train.size(); ++i) {
      const std::vector<satisfaction::Vote> votes = satisfaction::apply_labeling_functions(r.train[i]->input);
      r.posterior.push_back(label_model->probability(votes));
      if (satisfaction::votes_conflict(votes)) r.contested.push_back(i);
    }
    std::vector<double> sorted = r.posterior;
    std::sort(sorted.begin(), sorted.end());
    r.cut = sorted[static_cast<std::size_t>(kUnsatisfiedShare * static_cast<double>(sorted.size()))];
    const std::size_t k = r.contested.size();

    Indices nearest(r.train.size());
    std::iota(nearest.begin(), nearest.end(), 0);
    std::stable_sort(nearest.begin(), nearest.end(), [&](std::size_t a, std::size_t b) {
      return std::abs(r.posterior[a] - r.cut) < std::abs(r.posterior[b] - r.cut);
    });
    nearest.resize(k);
    std::mt19937_64 rng(static_cast<std::uint64_t>(rotation) + 1);
    Indices shuffled(r.train.size());
    std::iota(shuffled.begin(), shuffled.end(), 0);
    double random_alone = 0, random_weak = 0;
    for (int draw = 0; draw < draws; ++draw) {
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      const Indices rated(shuffled.begin(), shuffled.begin() + static_cast<std::ptrdiff_t>(k));
      random_alone += ratings_alone(r, rated) / draws;
      random_weak += ratings_and_weak_labels(r, rated) / draws;
    }
    const double row[7] = {ratings_alone(r, r.contested),       random_alone,
                           ratings_alone(r, nearest),           ratings_and_weak_labels(r, {}),
                           ratings_and_weak_labels(r, r.contested), random_weak,
                           ratings_and_weak_labels(r, nearest)};
    std::printf("| %d | %zu | %zu |", rotation, r.train.size(), k);
    for (int c = 0; c < 7; ++c) {
      std::printf(" %.4f |", row[c]);
      sums[c] += row[c] / rotations;
    }
    std::printf("\n");
  }
  std::printf("| mean | | |");
  for (double mean : sums) std::printf(" %.4f |", mean);
  std::printf("\n");
  return 0;
}
