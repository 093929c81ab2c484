// `selffeed eval-satisfaction`, `selffeed lf-report` and `selffeed lf-drift`: the satisfaction
// baselines, the weak-supervision report and the drift alerts on the ConvAI2 human judgements.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "drift_monitor.h"
#include "selffeed/common/context.h"
#include "selffeed/store/store.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {
namespace {

using nlohmann::json;
using satisfaction::BinaryMetrics;
using satisfaction::SatisfactionInput;
using satisfaction::Vote;
using trainer::SatisfactionExample;
using trainer::Split;

struct SatisfactionFlags {
  std::vector<std::string> labelled;  // ConvAI2 files with ratings
  std::vector<std::string> pool;      // extra unlabelled ConvAI2 files
  std::string json_out;
  std::string bundle;  // dialogue bundle: tokenizer for the estimator, model for the uncertainty baseline
  int seeds = 3;
  int rotations = 1;  // eval-satisfaction: 1 = the fixed split; up to 5 = cross-validation
  int epochs = 8;
  std::size_t weak_sample = 6000;
  satisfaction::EstimatorConfig estimator;
  // Start the estimator from the dialogue bundle's embeddings and context encoder (it then
  // takes that encoder's shape instead of `estimator`'s).
  bool init_encoder = false;
  double learning_rate = 1e-3;
  double max_ask_rate = 1.0;  // the threshold's budget on valid (train-satisfaction)
  // LibTorch intra-op threads: 1, as in the other model commands (LibTorch's default, the
  // core count, was slower here). The weak rows move in the third decimal with the thread
  // counts of LibTorch and of OpenBLAS (OPENBLAS_NUM_THREADS, else the core count): a table
  // reproduces exactly only at the same settings.
  int threads = 1;
  // train-satisfaction only
  std::string out;
  std::string recipe = "supervised";
  std::uint64_t seed = 1;
  std::string store;  // also the users' thumbs (ST examples) harvested in this store
  // lf-report, lf-drift, train-satisfaction: pattern labeling functions beside the built-ins
  std::string labeling_functions;
  // lf-drift only
  DriftMonitor::Options drift;
  int repeats = 20;
};


using Data = trainer::SatisfactionData;

Result<Data> load(const SatisfactionFlags& f, int rotation = 0) {
  return trainer::load_satisfaction_data(f.labelled, f.pool, rotation);
}

struct Scored {
  std::vector<double> scores;
  std::vector<int> labels;
};

template <class Score>
Scored score_split(const std::vector<SatisfactionExample>& data, Split split, Score&& score) {
  Scored s;
  for (const auto& e : data) {
    if (e.split != split) continue;
    s.scores.push_back(score(e.input));
    s.labels.push_back(e.label);
  }
  return s;
}

constexpr const char* kNaiveBayes = "naive Bayes, bag of words (ST train)";
constexpr int kBootstrapResamples = 2000;

// One run of a method: test metrics and scores, and the valid AUC that choices were made on.
struct Row {
  BinaryMetrics test;
  double valid_auc = 0;
  // In the order of the splits: test for the bootstrap, both for other operating points.
  std::vector<double> valid_scores;
  std::vector<double> test_scores;
};
// One method of the report: one run, or one per seed for the learned estimators.
struct Method {
  std::string name;
  std::vector<Row> runs;
};

// Scores valid and test; the threshold is `threshold`, or when absent the one with the
// best F1 on valid.
template <class Score>
Method evaluated(std::string name, const std::vector<SatisfactionExample>& data, Score&& score,
                 std::optional<double> threshold = std::nullopt) {
  Scored valid = score_split(data, Split::kValid, score);
  Scored test = score_split(data, Split::kTest, score);
  const double t = threshold.value_or(satisfaction::best_threshold(valid.scores, valid.labels));
  Row run{.test = satisfaction::evaluate_binary(test.scores, test.labels, t),
          .valid_auc = satisfaction::evaluate_binary(valid.scores, valid.labels, t).auc,
          .valid_scores = std::move(valid.scores),
          .test_scores = std::move(test.scores)};
  return {std::move(name), {std::move(run)}};
}

json metrics_json(const BinaryMetrics& m) {
  return {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}, {"auc", m.auc},
          {"accuracy", m.accuracy}, {"ask_rate", m.ask_rate}, {"threshold", m.threshold}, {"examples", m.examples}};
}

// The estimator's shape, initialisation and optimiser settings from the flags; the data
// is filled in by the caller.
trainer::SatisfactionTrainOptions estimator_options(const SatisfactionFlags& f, const dialogue::DialogueModel& dialogue,
                                                    std::uint64_t seed) {
  trainer::SatisfactionTrainOptions o{.tokenizer = dialogue.shared_tokenizer(), .config = f.estimator};
  if (f.init_encoder) {
    const dialogue::ModelConfig& d = dialogue.config();
    o.config = {.d_model = d.d_model, .n_heads = d.n_heads, .n_layers = d.n_layers, .ffn_size = d.ffn_size,
                .max_tokens = f.estimator.max_tokens, .scale_embeddings = d.scale_embeddings};
    o.init_encoder_from = f.bundle;
  }
  o.epochs = f.epochs;
  o.learning_rate = f.learning_rate;
  o.max_ask_rate = f.max_ask_rate;
  o.seed = seed;
  return o;
}

// Training pairs for the estimator: the labelled train split (hard targets), a sample of
// the unlabelled pool with the label model's soft targets (its ranking), and the
// labelled valid split that picks the epoch and the threshold.
using PairSet = trainer::SatisfactionPairs;
// The ST labels users gave with thumbs in a store (read-only), deleted users excluded.
Result<std::size_t> add_thumbs(const std::string& store_dir, PairSet& set) {
  SELFFEED_ASSIGN_OR_RETURN(auto store, store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly}));
  SELFFEED_ASSIGN_OR_RETURN(trainer::HarvestedExamples harvested,
                            trainer::load_harvested(*store, trainer::HarvestGuard()));
  const PairSet& thumbs = harvested.thumbs;
  set.contexts.insert(set.contexts.end(), thumbs.contexts.begin(), thumbs.contexts.end());
  set.targets.insert(set.targets.end(), thumbs.targets.begin(), thumbs.targets.end());
  return thumbs.contexts.size();
}

struct TrainingSets {
  PairSet supervised;
  PairSet weak;
  std::vector<std::string> valid_contexts;
  std::vector<int> valid_labels;
  PairSet both() const {
    PairSet all = supervised;
    all.contexts.insert(all.contexts.end(), weak.contexts.begin(), weak.contexts.end());
    all.targets.insert(all.targets.end(), weak.targets.begin(), weak.targets.end());
    return all;
  }
};
struct Recipe {
  std::string name;
  PairSet set;
};

TrainingSets training_sets(const Data& d, const satisfaction::LabelModel& label_model,
                           std::span<const satisfaction::LabelingFunction> functions, std::size_t weak_sample,
                           std::mt19937_64& rng) {
  TrainingSets sets;
  trainer::SatisfactionSplits splits = trainer::satisfaction_splits(d.labelled);
  sets.supervised = {std::move(splits.train.contexts), {splits.train.labels.begin(), splits.train.labels.end()}};
  sets.valid_contexts = std::move(splits.valid.contexts);
  sets.valid_labels = std::move(splits.valid.labels);
  sets.weak = trainer::weak_labels(label_model, d.unlabelled, weak_sample, rng, functions);
  return sets;
}

struct MeanAndSpread {
  double mean = 0, sd = 0;
};
template <class Field>
MeanAndSpread over_runs(const std::vector<Row>& runs, Field&& field) {
  MeanAndSpread m;
  for (const Row& run : runs) m.mean += field(run);
  m.mean /= static_cast<double>(runs.size());
  for (const Row& run : runs) m.sd += (field(run) - m.mean) * (field(run) - m.mean);
  m.sd = std::sqrt(m.sd / static_cast<double>(runs.size()));
  return m;
}

// The bag-of-words reference, fitted on the rated train split.
satisfaction::NaiveBayes naive_bayes_on_train(const Data& d) {
  std::vector<SatisfactionInput> train_inputs;
  std::vector<int> train_labels;
  for (const auto& e : d.labelled) {
    if (e.split != Split::kTrain) continue;
    train_inputs.push_back(e.input);
    train_labels.push_back(e.label);
  }
  return satisfaction::NaiveBayes::fit(train_inputs, train_labels);
}

// Every method on one assignment of the folds to train / valid / test.
// `dialogue_model` may be null: the uncertainty baseline and the estimators need it.
Result<std::vector<Method>> evaluate_methods(const SatisfactionFlags& f, const Data& d,
                                             const dialogue::DialogueModel* dialogue_model) {
  SELFFEED_ASSIGN_OR_RETURN(satisfaction::LabelModel label_model, trainer::fit_label_model(d));
  satisfaction::NaiveBayes nb = naive_bayes_on_train(d);

  std::vector<Method> methods;
  methods.push_back(
      evaluated("always unsatisfied (trivial)", d.labelled, [](const SatisfactionInput&) { return 0.0; }, 0.5));
  methods.push_back(evaluated(
      "paper regexes", d.labelled,
      [](const SatisfactionInput& in) { return satisfaction::paper_regex_unsatisfied(in.user_reply) ? 0.0 : 1.0; }, 0.5));
  methods.push_back(evaluated(kNaiveBayes, d.labelled,
                              [&](const SatisfactionInput& in) { return nb.probability(in); }));
  methods.push_back(evaluated("majority vote of the labeling functions (no labels)", d.labelled,
                              [](const SatisfactionInput& in) {
                                return satisfaction::majority_vote(satisfaction::apply_labeling_functions(in));
                              }));
  methods.push_back(evaluated("label model alone (no labels)", d.labelled, [&](const SatisfactionInput& in) {
    return label_model.probability(satisfaction::apply_labeling_functions(in));
  }));
  if (dialogue_model == nullptr) return methods;

  // Uncertainty (paper 2.5): the dialogue model's softmax probability of the bot's
  // actual answer against 19 other bot answers, given the context before it.
  std::vector<std::string> bot_answers;
  for (const auto& e : d.labelled) bot_answers.push_back(e.input.bot_reply);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::size_t> pick(0, bot_answers.size() - 1);
  std::unordered_map<const SatisfactionInput*, double> confidence;
  std::vector<std::string> contexts;
  std::vector<std::vector<std::string>> candidates;
  std::vector<const SatisfactionInput*> order;
  for (const auto& e : d.labelled) {
    if (e.split == Split::kTrain) continue;
    std::vector<std::string> c = {e.input.bot_reply};
    while (c.size() < 20) c.push_back(bot_answers[pick(rng)]);
    contexts.push_back(format_context(e.input.history));
    candidates.push_back(std::move(c));
    order.push_back(&e.input);
  }
  SELFFEED_ASSIGN_OR_RETURN(auto scores, dialogue_model->score(contexts, candidates));
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::vector<float>& s = scores[i];
    double top = *std::max_element(s.begin(), s.end()), sum = 0;
    for (float x : s) sum += std::exp(x - top);
    confidence[order[i]] = std::exp(s[0] - top) / sum;
  }
  methods.push_back(evaluated("uncertainty: dialogue model P(bot answer) of 20", d.labelled,
                              [&](const SatisfactionInput& in) { return confidence.at(&in); }));

  // The learned estimators, one run per seed.
  TrainingSets sets = training_sets(d, label_model, satisfaction::labeling_functions(), f.weak_sample, rng);
  std::vector<Recipe> recipes = {
      {"estimator, supervised (ST train)", sets.supervised},
      {"estimator, weakly supervised (label model, no hand labels)", sets.weak},
      {"estimator, supervised + weak", sets.both()},
  };
  const trainer::SatisfactionSet test_set = trainer::satisfaction_splits(d.labelled).test;
  for (const Recipe& r : recipes) {
    Method method{r.name, {}};
    for (int seed = 1; seed <= f.seeds; ++seed) {
      trainer::SatisfactionTrainOptions o = estimator_options(f, *dialogue_model, static_cast<std::uint64_t>(seed));
      o.train_contexts = r.set.contexts;
      o.train_targets = r.set.targets;
      o.valid_contexts = sets.valid_contexts;
      o.valid_labels = sets.valid_labels;
      SELFFEED_ASSIGN_OR_RETURN(trainer::SatisfactionTrainReport trained, trainer::train_satisfaction(o));
      SELFFEED_ASSIGN_OR_RETURN(std::vector<double> valid_scores, trained.model->score(sets.valid_contexts));
      SELFFEED_ASSIGN_OR_RETURN(std::vector<double> test_scores, trained.model->score(test_set.contexts));
      method.runs.push_back({satisfaction::evaluate_binary(test_scores, test_set.labels, trained.model->threshold()),
                             trained.valid_auc, std::move(valid_scores), std::move(test_scores)});
      std::fprintf(stderr, "%s, seed %d: valid AUC %.3f, test F1 %.3f AUC %.3f (best epoch %d)\n", r.name.c_str(), seed,
                   trained.valid_auc, method.runs.back().test.f1, method.runs.back().test.auc, trained.best_epoch);
    }
    methods.push_back(std::move(method));
  }
  return methods;
}

// The table of one split (rotation 0: the split of every other report).
json print_split_report(const Data& d, const std::vector<Method>& methods) {
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& e : d.labelled) ++counts[static_cast<int>(e.split)];
  std::printf("ConvAI2 satisfaction labels: %zu train / %zu valid / %zu test (split: FNV-1a of the dialogue id mod 5)\n",
              counts[0], counts[1], counts[2]);
  std::printf("Unlabelled pool for the label model: %zu replies (train dialogues only)\n\n", d.unlabelled.size());
  std::printf("| method (test split) | precision | recall | F1 | AUC | accuracy | asks | threshold | valid AUC |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  json report = {{"split_counts", {{"train", counts[0]}, {"valid", counts[1]}, {"test", counts[2]}}},
                 {"unlabelled_pool", d.unlabelled.size()}, {"rows", json::array()}};
  for (const Method& method : methods) {
    if (method.runs.size() == 1) {
      const Row& r = method.runs.front();
      const BinaryMetrics& m = r.test;
      std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", method.name.c_str(), m.precision,
                  m.recall, m.f1, m.auc, m.accuracy, m.ask_rate, m.threshold, r.valid_auc);
      json row = metrics_json(m);
      row["method"] = method.name;
      row["valid_auc"] = r.valid_auc;
      report["rows"].push_back(row);
      continue;
    }
    const auto& runs = method.runs;
    auto p = over_runs(runs, [](const Row& run) { return run.test.precision; });
    auto r = over_runs(runs, [](const Row& run) { return run.test.recall; });
    auto f1 = over_runs(runs, [](const Row& run) { return run.test.f1; });
    auto auc = over_runs(runs, [](const Row& run) { return run.test.auc; });
    auto acc = over_runs(runs, [](const Row& run) { return run.test.accuracy; });
    auto asks = over_runs(runs, [](const Row& run) { return run.test.ask_rate; });
    auto valid_auc = over_runs(runs, [](const Row& run) { return run.valid_auc; });
    std::printf(
        "| %s (%zu seeds) | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | per seed "
        "| %.3f ± %.3f |\n",
        method.name.c_str(), runs.size(), p.mean, p.sd, r.mean, r.sd, f1.mean, f1.sd, auc.mean, auc.sd, acc.mean,
        acc.sd, asks.mean, asks.sd, valid_auc.mean, valid_auc.sd);
    report["rows"].push_back({{"method", method.name}, {"seeds", runs.size()}, {"f1_mean", f1.mean},
                              {"f1_sd", f1.sd}, {"auc_mean", auc.mean}, {"auc_sd", auc.sd},
                              {"precision_mean", p.mean}, {"recall_mean", r.mean}, {"accuracy_mean", acc.mean},
                              {"ask_rate_mean", asks.mean}, {"valid_auc_mean", valid_auc.mean}});
  }
  std::printf(
      "\nPrecision, recall and F1 are of the unsatisfied class; \"asks\" is the share of test replies called "
      "unsatisfied, how often the bot would ask for feedback; thresholds and epochs are chosen on valid (for the "
      "estimators, valid AUC is that of the epoch kept, the best of its run).\n");
  return report;
}

// Each method's test AUC and F1 against naive Bayes', with 95% intervals from a bootstrap
// over the test dialogues: the split's ~80 dialogues are what limits how far apart two
// methods must be before the table can tell them apart. Paired (both methods score the same
// resample); a method's seeds are averaged inside each resample, as in the table.
json print_gains_over_naive_bayes(const Data& d, const std::vector<Method>& methods) {
  const auto nb = std::find_if(methods.begin(), methods.end(), [](const Method& m) { return m.name == kNaiveBayes; });
  if (nb == methods.end()) return json::array();
  std::vector<int> labels;
  std::vector<std::size_t> dialogue_of;
  std::unordered_map<std::string, std::size_t> dialogue_index;
  for (const auto& e : d.labelled) {
    if (e.split != Split::kTest) continue;
    labels.push_back(e.label);
    dialogue_of.push_back(dialogue_index.emplace(e.dialogue_id, dialogue_index.size()).first->second);
  }
  std::vector<double> scores;
  std::vector<int> sample_labels;
  auto mean_over_runs = [&](const Method& method, std::span<const std::size_t> sample, double BinaryMetrics::*metric) {
    double sum = 0;
    for (const Row& run : method.runs) {
      scores.clear();
      sample_labels.clear();
      for (std::size_t i : sample) {
        scores.push_back(run.test_scores[i]);
        sample_labels.push_back(labels[i]);
      }
      sum += satisfaction::evaluate_binary(scores, sample_labels, run.test.threshold).*metric;
    }
    return sum / static_cast<double>(method.runs.size());
  };
  std::vector<std::size_t> everything(labels.size());
  std::iota(everything.begin(), everything.end(), 0);

  std::printf("\nAgainst naive Bayes on the test split: the gain in AUC and in F1, a 95%% interval from %d resamples "
              "of its %zu dialogues, and the share of resamples where the method is ahead\n\n",
              kBootstrapResamples, dialogue_index.size());
  std::printf("| method | AUC gain | 95%% interval | ahead | F1 gain | 95%% interval | ahead |\n");
  std::printf("|---|---:|:---:|---:|---:|:---:|---:|\n");
  json out = json::array();
  for (const Method& method : methods) {
    if (&method == &*nb) continue;
    std::printf("| %s |", method.name.c_str());
    json row = {{"method", method.name}};
    for (auto [metric, key] : {std::pair{&BinaryMetrics::auc, "auc"}, std::pair{&BinaryMetrics::f1, "f1"}}) {
      auto gain = [&](std::span<const std::size_t> sample) {
        return mean_over_runs(method, sample, metric) - mean_over_runs(*nb, sample, metric);
      };
      const double observed = gain(everything);
      const satisfaction::BootstrapInterval interval =
          satisfaction::group_bootstrap(dialogue_of, kBootstrapResamples, /*seed=*/2019, gain);
      std::printf(" %+.3f | [%+.3f, %+.3f] | %.0f%% |", observed, interval.low, interval.high,
                  100 * interval.share_above_zero);
      row[key] = {{"gain", observed}, {"low", interval.low}, {"high", interval.high},
                  {"ahead_share", interval.share_above_zero}};
    }
    std::printf("\n");
    out.push_back(std::move(row));
  }
  return out;
}

// Operating points that ask less. At the F1-optimal thresholds of the main table most
// methods ask on most turns; here each run's threshold is chosen again on valid, the best
// F1 among those that flag at most a budget's share of valid, and applied to test.
constexpr double kAskBudgets[] = {0.1, 0.2, 0.3};
// One method's test precision, recall, F1 and asks at each budget, means over its runs.
using AtBudgets = std::array<BinaryMetrics, std::size(kAskBudgets)>;

// into += weight * m, over the fields the asking-less tables average.
void add_weighted(BinaryMetrics& into, const BinaryMetrics& m, double weight) {
  into.precision += weight * m.precision;
  into.recall += weight * m.recall;
  into.f1 += weight * m.f1;
  into.ask_rate += weight * m.ask_rate;
}

std::vector<AtBudgets> at_ask_budgets(const Data& d, const std::vector<Method>& methods) {
  const trainer::SatisfactionSplits splits = trainer::satisfaction_splits(d.labelled);
  const std::vector<int>& valid_labels = splits.valid.labels;
  const std::vector<int>& test_labels = splits.test.labels;
  std::vector<AtBudgets> out;
  for (const Method& method : methods) {
    AtBudgets& means = out.emplace_back();
    for (std::size_t b = 0; b < std::size(kAskBudgets); ++b) {
      for (const Row& run : method.runs) {
        const double t = satisfaction::best_threshold(run.valid_scores, valid_labels, kAskBudgets[b]);
        add_weighted(means[b], satisfaction::evaluate_binary(run.test_scores, test_labels, t),
                     1.0 / static_cast<double>(method.runs.size()));
      }
    }
  }
  return out;
}

// `rotations`: at_ask_budgets() of each rotation printed (one: the fixed split), averaged.
json print_asking_less(const char* title, const std::vector<Method>& methods,
                       const std::vector<std::vector<AtBudgets>>& rotations) {
  std::printf("\n%s\n\n| method |", title);
  for (double b : kAskBudgets) std::printf(" ≤%.0f%%: precision | recall | asks |", 100 * b);
  std::printf("\n|---|");
  for (std::size_t b = 0; b < std::size(kAskBudgets); ++b) std::printf("---:|---:|---:|");
  std::printf("\n");
  const double share = 1.0 / static_cast<double>(rotations.size());
  json out = json::array();
  for (std::size_t m = 0; m < methods.size(); ++m) {
    std::printf("| %s |", methods[m].name.c_str());
    json points = json::array();
    for (std::size_t b = 0; b < std::size(kAskBudgets); ++b) {
      BinaryMetrics mean;
      for (const auto& rotation : rotations) add_weighted(mean, rotation[m][b], share);
      std::printf(" %.3f | %.3f | %.3f |", mean.precision, mean.recall, mean.ask_rate);
      points.push_back({{"max_ask_rate_valid", kAskBudgets[b]}, {"precision", mean.precision},
                        {"recall", mean.recall}, {"f1", mean.f1}, {"ask_rate", mean.ask_rate}});
    }
    std::printf("\n");
    out.push_back({{"method", methods[m].name}, {"points", std::move(points)}});
  }
  return out;
}

// Cross-validation: each method's test AUC and F1 (mean over seeds) with every fold the
// test split once. On ConvAI2's ratings a test split is ~230 replies from under a hundred
// dialogues; one split alone cannot tell methods 0.03 AUC apart.
json print_rotation_report(const std::vector<std::vector<Method>>& rotations) {
  std::printf("\nCross-validated: test AUC per rotation of the folds (rotation r: fold (4 - r) mod 5 is test, the one "
              "before it valid), mean over seeds\n\n| method |");
  for (std::size_t r = 0; r < rotations.size(); ++r) std::printf(" r%zu |", r);
  std::printf(" mean AUC | mean F1 |\n|---|");
  for (std::size_t r = 0; r < rotations.size(); ++r) std::printf("---:|");
  std::printf("---:|---:|\n");
  json out = json::array();
  for (std::size_t m = 0; m < rotations.front().size(); ++m) {
    std::vector<double> aucs, f1s;
    for (const auto& methods : rotations) {
      aucs.push_back(over_runs(methods[m].runs, [](const Row& run) { return run.test.auc; }).mean);
      f1s.push_back(over_runs(methods[m].runs, [](const Row& run) { return run.test.f1; }).mean);
    }
    const double n = static_cast<double>(aucs.size());
    const double mean_auc = std::accumulate(aucs.begin(), aucs.end(), 0.0) / n;
    const double mean_f1 = std::accumulate(f1s.begin(), f1s.end(), 0.0) / n;
    std::printf("| %s |", rotations.front()[m].name.c_str());
    for (double a : aucs) std::printf(" %.3f |", a);
    std::printf(" **%.3f** | %.3f |\n", mean_auc, mean_f1);
    out.push_back({{"method", rotations.front()[m].name}, {"auc", aucs}, {"f1", f1s}, {"auc_mean", mean_auc},
                   {"f1_mean", mean_f1}});
  }
  return out;
}

int run_eval(const SatisfactionFlags& f) {
  dialogue::configure_threads({.intra_op = f.threads});
  std::unique_ptr<dialogue::DialogueModel> dialogue_model;
  if (!f.bundle.empty()) {
    auto loaded = dialogue::DialogueModel::load(f.bundle);
    if (!loaded.ok()) return fail(loaded.status());
    dialogue_model = std::move(*loaded);
  }
  json report;
  std::vector<std::vector<Method>> rotations;
  std::vector<std::vector<AtBudgets>> asking_less;
  for (int rotation = 0; rotation < f.rotations; ++rotation) {
    auto d = load(f, rotation);
    if (!d.ok()) return fail(d.status());
    if (f.rotations > 1) std::fprintf(stderr, "rotation %d of %d\n", rotation, f.rotations);
    auto methods = evaluate_methods(f, *d, dialogue_model.get());
    if (!methods.ok()) return fail(methods.status());
    asking_less.push_back(at_ask_budgets(*d, *methods));
    if (rotation == 0) {
      report = print_split_report(*d, *methods);
      report["gains_over_naive_bayes"] = print_gains_over_naive_bayes(*d, *methods);
      report["asking_less"] = print_asking_less(
          "Asking less: each run's threshold the best F1 on valid among those that flag at most a budget's share of "
          "valid; precision, recall and asks on test (mean over seeds)",
          *methods, {asking_less.front()});
    }
    rotations.push_back(std::move(*methods));
  }
  if (rotations.size() > 1) {
    report["rotations"] = print_rotation_report(rotations);
    report["rotations_asking_less"] = print_asking_less(
        "Cross-validated, asking less: as above, the mean over the rotations", rotations.front(), asking_less);
  }
  if (Status s = write_report(f.json_out, report.dump(2)); !s.ok()) return fail(s);
  return 0;
}

// "0.750 (8)": a share and what it is of; "- (0)" when of nothing.
std::string share_of(double count, double of) {
  if (of == 0) return "- (0)";
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.3f (%d)", count / of, static_cast<int>(of));
  return buffer;
}

// The replies the server judged in a store (replies to the bot's answers, in conversations
// that teach it), as the labeling functions read them, with the user's thumbs on the
// answer where there is one.
Result<std::vector<SatisfactionInput>> judged_replies(const std::string& store_dir) {
  SELFFEED_ASSIGN_OR_RETURN(auto store, store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly}));
  std::map<std::pair<std::string, std::int64_t>, int> thumbs;  // (conversation, bot turn) -> 1 up, 0 down
  SELFFEED_RETURN_IF_ERROR(store->scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
    if (e.source == kFromThumbs) thumbs[{e.conversation_id, e.turn_index}] = e.target == "1" ? 1 : 0;
    return true;
  }));
  std::vector<SatisfactionInput> out;
  SELFFEED_RETURN_IF_ERROR(store->scan_transcripts({}, [&](const Conversation& c, const std::vector<Turn>& turns) {
    std::vector<std::string> history;
    for (std::size_t i = 0; i + 1 < turns.size(); ++i) {
      const Turn& turn = turns[i];
      const Turn& reply = turns[i + 1];
      if (turn.speaker == Speaker::kBot && reply.speaker == Speaker::kUser && reply.satisfaction) {
        SatisfactionInput in{.history = history, .bot_reply = turn.text, .user_reply = reply.text};
        if (auto t = thumbs.find({c.id, static_cast<std::int64_t>(turn.index)}); t != thumbs.end()) in.thumbs = t->second;
        out.push_back(std::move(in));
      }
      history.push_back(turn.text);
    }
    return true;
  }));
  return out;
}

// Where the functions contradict each other (votes_conflict): how many such replies there
// are, and how well the label model reads them against the others, on the rated train and
// valid replies (never test).
void print_contested(const Data& d, std::span<const satisfaction::LabelingFunction> functions,
                     const std::vector<std::vector<Vote>>& pool, const satisfaction::LabelModel& label_model) {
  const auto contested_in_pool = std::ranges::count_if(pool, [](const auto& votes) {
    return satisfaction::votes_conflict(votes);
  });
  Scored sides[2];  // [0] uncontested, [1] contested
  for (const auto& e : d.labelled) {
    if (e.split == Split::kTest) continue;
    const std::vector<Vote> votes = satisfaction::apply_labeling_functions(functions, e.input);
    Scored& side = sides[satisfaction::votes_conflict(votes)];
    side.scores.push_back(label_model.probability(votes));
    side.labels.push_back(e.label);
  }
  std::printf("\nContested replies (one function votes satisfied, another unsatisfied): %.3f of the pool.\n",
              static_cast<double>(contested_in_pool) / std::max<double>(1, static_cast<double>(pool.size())));
  std::printf("| rated TRAIN + VALID replies | n | unsatisfied | label model ROC-AUC |\n|---|---:|---:|---:|\n");
  const char* names[2] = {"uncontested", "contested"};
  for (int c = 0; c < 2; ++c) {
    const Scored& side = sides[c];
    const double unsatisfied = static_cast<double>(std::ranges::count(side.labels, 0));
    const bool both = unsatisfied > 0 && unsatisfied < static_cast<double>(side.labels.size());
    std::printf("| %s | %zu | %.3f | ", names[c], side.labels.size(),
                unsatisfied / std::max<double>(1, static_cast<double>(side.labels.size())));
    if (both) {
      std::printf("%.4f |\n", satisfaction::evaluate_binary(side.scores, side.labels, 0.5).auc);
    } else {
      std::printf("- |\n");
    }
  }
}

int run_lf_report(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto loaded = satisfaction::labeling_functions_with(f.labeling_functions);
  if (!loaded.ok()) return fail(loaded.status());
  const std::vector<satisfaction::LabelingFunction>& functions = *loaded;
  std::vector<std::vector<Vote>> users;  // the store's judged replies, with --store
  std::vector<std::optional<int>> users_thumbs;
  if (!f.store.empty()) {
    auto replies = judged_replies(f.store);
    if (!replies.ok()) return fail(replies.status());
    for (const SatisfactionInput& in : *replies) {
      users.push_back(satisfaction::apply_labeling_functions(functions, in));
      users_thumbs.push_back(in.thumbs);
    }
  }
  auto label_model = trainer::fit_label_model(*d, functions);
  if (!label_model.ok()) return fail(label_model.status());
  const std::size_t m = functions.size();
  std::vector<std::vector<Vote>> pool;
  for (const auto& e : d->unlabelled) pool.push_back(satisfaction::apply_labeling_functions(functions, e.input));
  std::printf("Labeling functions on %zu unlabelled replies; empirical accuracy on the labelled VALID split.\n\n",
              pool.size());
  if (!f.store.empty()) {
    std::printf("With --store: coverage on the %zu replies the server judged there, and agreement with the users' "
                "thumbs on the answers they rated.\n\n", users.size());
  }
  std::printf("| function | votes | coverage | overlap | conflict | learned accuracy | valid accuracy (n) |%s\n",
              f.store.empty() ? "" : " users' coverage | agreement with thumbs (n) |");
  std::printf("|---|:---:|---:|---:|---:|---:|---:|%s\n", f.store.empty() ? "" : "---:|---:|");
  for (std::size_t j = 0; j < m; ++j) {
    double covered = 0, overlapped = 0, conflicted = 0, sat_votes = 0;
    for (const auto& row : pool) {
      if (row[j] == Vote::kAbstain) continue;
      ++covered;
      sat_votes += row[j] == Vote::kSatisfied;
      bool overlap = false, conflict = false;
      for (std::size_t k = 0; k < m; ++k) {
        if (k == j || row[k] == Vote::kAbstain) continue;
        overlap = true;
        conflict |= row[k] != row[j];
      }
      overlapped += overlap;
      conflicted += conflict;
    }
    double right = 0, seen = 0;
    for (const auto& e : d->labelled) {
      if (e.split != Split::kValid) continue;
      Vote v = functions[j].apply(e.input);
      if (v == Vote::kAbstain) continue;
      ++seen;
      right += static_cast<int>(v) == e.label;
    }
    const double n = std::max<double>(1, static_cast<double>(pool.size()));
    const char* side = covered == 0 ? "-" : sat_votes == covered ? "sat" : sat_votes == 0 ? "unsat" : "both";
    std::printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %s |", functions[j].name.c_str(), side, covered / n,
                overlapped / n, conflicted / n, label_model->accuracies()[j], share_of(right, seen).c_str());
    if (!f.store.empty()) {
      double voted = 0, agreed = 0, rated = 0;
      for (std::size_t i = 0; i < users.size(); ++i) {
        if (users[i][j] == Vote::kAbstain) continue;
        ++voted;
        if (!users_thumbs[i]) continue;
        ++rated;
        agreed += static_cast<int>(users[i][j]) == *users_thumbs[i];
      }
      std::printf(" %.3f | %s |", voted / std::max<double>(1, static_cast<double>(users.size())),
                  share_of(agreed, rated).c_str());
    }
    std::printf("\n");
  }
  std::printf("\nLearned class prior P(satisfied) = %.3f after %d EM iterations.\n", label_model->prior(),
              label_model->iterations());
  // What the functions are worth together: the label model's ranking of the rated replies.
  const Scored valid = score_split(d->labelled, Split::kValid, [&](const SatisfactionInput& in) {
    return label_model->probability(satisfaction::apply_labeling_functions(functions, in));
  });
  if (!valid.scores.empty()) {
    std::printf("The label model's ROC-AUC on the %zu rated VALID replies: %.4f.\n", valid.scores.size(),
                satisfaction::evaluate_binary(valid.scores, valid.labels, 0.5).auc);
  }
  print_contested(*d, functions, pool, *label_model);
  return 0;
}

// Trains the estimator and writes a new bundle: a copy of --bundle plus satisfaction.{json,pt}.
int run_train(const SatisfactionFlags& f) {
  dialogue::configure_threads({.intra_op = f.threads});
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto functions = satisfaction::labeling_functions_with(f.labeling_functions);
  if (!functions.ok()) return fail(functions.status());
  auto label_model = trainer::fit_label_model(*d, *functions);
  if (!label_model.ok()) return fail(label_model.status());
  auto dialogue_model = dialogue::DialogueModel::load(f.bundle);
  if (!dialogue_model.ok()) return fail(dialogue_model.status());
  std::error_code ec;
  if (std::filesystem::exists(f.out, ec)) return fail(already_exists_error("'" + f.out + "' exists; bundles are immutable"));
  std::mt19937_64 rng(f.seed);
  TrainingSets sets = training_sets(*d, *label_model, *functions, f.weak_sample, rng);
  PairSet chosen = f.recipe == "weak" ? sets.weak : f.recipe == "both" ? sets.both() : sets.supervised;
  std::size_t thumbs = 0;
  if (!f.store.empty()) {
    auto added = add_thumbs(f.store, chosen);
    if (!added.ok()) return fail(added.status());
    thumbs = *added;
  }
  trainer::SatisfactionTrainOptions o = estimator_options(f, **dialogue_model, f.seed);
  o.train_contexts = chosen.contexts;
  o.train_targets = chosen.targets;
  o.valid_contexts = sets.valid_contexts;
  o.valid_labels = sets.valid_labels;
  auto trained = trainer::train_satisfaction(o);
  if (!trained.ok()) return fail(trained.status());
  const trainer::SatisfactionSet test_set = trainer::satisfaction_splits(d->labelled).test;
  auto scores = trained->model->score(test_set.contexts);
  if (!scores.ok()) return fail(scores.status());
  BinaryMetrics test = satisfaction::evaluate_binary(*scores, test_set.labels, trained->model->threshold());
  std::filesystem::copy(f.bundle, f.out, std::filesystem::copy_options::recursive, ec);
  if (ec) return fail(internal_error("cannot copy '" + f.bundle + "' to '" + f.out + "': " + ec.message()));
  if (Status s = trained->model->save(f.out); !s.ok()) return fail(s);
  std::printf("%s\n", json{{"bundle", f.out},
                           {"recipe", f.recipe},
                           {"labeling_functions", satisfaction::names_of(*functions)},  // of the weak labels
                           {"train_examples", chosen.contexts.size()},
                           {"thumbs_from_store", thumbs},
                           {"best_epoch", trained->best_epoch},
                           {"valid_auc", trained->valid_auc},
                           {"valid_f1", trained->valid_f1},
                           {"valid_ask_rate", trained->valid_ask_rate},
                           {"test", metrics_json(test)}}
                          .dump(2)
                          .c_str());
  return 0;
}

// What serve's drift alerts (DriftMonitor) would say on real replies, with naive Bayes
// (ST train) standing in for the live estimator:
//   1. the unrated replies in the order of their files, as they came, and shuffled (where
//      every alert is a false alarm);
//   2. users who grow unhappier: after a reference block of rated VALID replies at their
//      own mix, blocks drawn (with replacement) at a higher share of unsatisfied ones.
int run_lf_drift(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto functions = satisfaction::labeling_functions_with(f.labeling_functions);
  if (!functions.ok()) return fail(functions.status());
  DriftMonitor::Options options = f.drift;
  options.functions = satisfaction::names_of(*functions);
  const satisfaction::NaiveBayes nb = naive_bayes_on_train(*d);
  auto label_of = [](const DriftMonitor::Alert& a) { return a.name + (a.subject.empty() ? "" : " " + a.subject); };
  auto alert_names = [&](const DriftMonitor::Report& report) {
    std::string names;
    for (const auto& a : report.alerts) names += (names.empty() ? "" : ", ") + label_of(a);
    return names.empty() ? std::string("-") : names;
  };

  // Replies as the functions and the estimator see them, each with its file.
  struct Judged {
    std::vector<Vote> votes;
    double score = 0;
    std::string file;
  };
  auto judged = [&](const SatisfactionExample& e) {
    return Judged{satisfaction::apply_labeling_functions(*functions, e.input), nb.probability(e.input),
                  e.dialogue_id.substr(0, e.dialogue_id.find('#'))};
  };
  std::vector<Judged> replies, satisfied, unsatisfied;  // unrated; rated valid
  for (const auto& e : d->unlabelled) replies.push_back(judged(e));
  for (const auto& e : d->labelled) {
    if (e.split == Split::kValid) (e.label == 1 ? satisfied : unsatisfied).push_back(judged(e));
  }
  metrics::Registry registry;
  // Streams `order` through a monitor; per completed block, its alerts and its files.
  auto stream = [&](const std::vector<std::size_t>& order) {
    DriftMonitor drift(options, registry);
    std::vector<std::pair<std::string, std::set<std::string>>> blocks;
    std::set<std::string> files;
    std::size_t fed = 0;
    for (std::size_t i : order) {
      drift.judged(replies[i].votes, replies[i].score);
      files.insert(replies[i].file);
      if (++fed % options.block != 0) continue;  // a block ends every `block` replies
      blocks.emplace_back(alert_names(drift.report()), std::move(files));
      files.clear();
    }
    return blocks;
  };
  std::vector<std::size_t> order(replies.size());
  std::iota(order.begin(), order.end(), 0);
  std::printf("1. The %zu unrated replies in file order, blocks of %zu (min shift %.2f).\n\n", replies.size(),
              f.drift.block, f.drift.min_shift);
  std::printf("| block | files | alerts |\n|---:|---|---|\n");
  std::size_t alerting = 0, compared = 0;
  for (const auto& [alerts, files] : stream(order)) {
    std::string names;
    for (const std::string& file : files) names += (names.empty() ? "" : ", ") + file;
    std::printf("| %zu | %s | %s |\n", ++compared, names.c_str(), alerts.c_str());
    alerting += alerts != "-";
  }
  std::printf("\n%zu of %zu blocks compared with the first alerted.\n\n", alerting, compared > 0 ? compared - 1 : 0);
  // Shuffled, the blocks are alike by construction: every alert is a false alarm.
  std::mt19937_64 rng(f.seed);
  alerting = compared = 0;
  for (int r = 0; r < f.repeats; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    const auto blocks = stream(order);
    for (std::size_t b = 1; b < blocks.size(); ++b) alerting += blocks[b].first != "-";
    compared += blocks.empty() ? 0 : blocks.size() - 1;
  }
  std::printf("The same replies shuffled (%d shuffles): %zu of %zu blocks compared with the first alerted.\n\n",
              f.repeats, alerting, compared);

  if (satisfied.empty() || unsatisfied.empty()) {
    std::printf("2. Unhappier users: not measured, the valid split has no rated replies of both kinds.\n");
    return 0;
  }
  const double own_share = static_cast<double>(unsatisfied.size()) / static_cast<double>(unsatisfied.size() + satisfied.size());
  std::printf("2. Unhappier users: a reference block of the %zu rated valid replies (%.0f%% unsatisfied), then 3 "
              "blocks at a higher share; %d repeats a share.\n\n", satisfied.size() + unsatisfied.size(),
              100 * own_share, f.repeats);
  std::printf("| unsatisfied share | blocks that alerted | mean score, reference -> after | alerts (repeats that raised it) |\n");
  std::printf("|---:|---:|---|---|\n");
  for (const double share : {own_share, 0.5, 0.6, 0.7, 0.9}) {
    std::size_t alerted = 0;
    double score_before = 0, score_after = 0;
    std::map<std::string, int> raised;
    for (int r = 0; r < f.repeats; ++r) {
      DriftMonitor drift(options, registry);
      auto block_at = [&](double unsatisfied_share) {
        std::bernoulli_distribution unhappy(unsatisfied_share);
        for (std::size_t i = 0; i < f.drift.block; ++i) {
          const auto& from = unhappy(rng) ? unsatisfied : satisfied;
          const Judged& reply = from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
          drift.judged(reply.votes, reply.score);
        }
      };
      block_at(own_share);
      std::set<std::string> in_this_repeat;
      for (int b = 0; b < 3; ++b) {
        block_at(share);
        const DriftMonitor::Report report = drift.report();
        alerted += !report.alerts.empty();
        for (const auto& a : report.alerts) in_this_repeat.insert(label_of(a));
        score_after += report.latest->mean_score / 3;
      }
      score_before += drift.report().score_reference->mean_score;
      for (const std::string& name : in_this_repeat) ++raised[name];
    }
    std::string names;
    for (const auto& [name, count] : raised) names += (names.empty() ? "" : ", ") + name + " (" + std::to_string(count) + ")";
    std::printf("| %.2f | %zu of %d | %.3f -> %.3f | %s |\n", share, alerted, 3 * f.repeats, score_before / f.repeats,
                score_after / f.repeats, names.empty() ? "-" : names.c_str());
  }
  return 0;
}

void add_estimator_flags(CLI::App& cmd, SatisfactionFlags& f) {
  cmd.add_option("--epochs", f.epochs, "estimator training epochs")->capture_default_str();
  cmd.add_option("--lr", f.learning_rate, "estimator learning rate (Adam)")->capture_default_str();
  cmd.add_option("--weak-sample", f.weak_sample, "unlabelled replies used for weak training")->capture_default_str();
  cmd.add_option("--d-model", f.estimator.d_model, "estimator width")->capture_default_str();
  cmd.add_option("--layers", f.estimator.n_layers, "estimator Transformer layers")->capture_default_str();
  cmd.add_option("--ffn-size", f.estimator.ffn_size, "estimator feed-forward width")->capture_default_str();
  cmd.add_option("--threads", f.threads, "LibTorch intra-op threads")->capture_default_str();
  cmd.add_flag("--init-encoder", f.init_encoder,
               "start the estimator from the dialogue bundle's embeddings and context encoder (and take its shape)");
}

void add_labeling_functions_flag(CLI::App& cmd, SatisfactionFlags& f) {
  cmd.add_option("--labeling-functions", f.labeling_functions,
                 "pattern labeling functions to add to the built-ins, one a line: NAME satisfied|unsatisfied "
                 "reply|answer RE2-PATTERN")
      ->check(CLI::ExistingFile);
}

void add_data_flags(CLI::App& cmd, SatisfactionFlags& f) {
  cmd.add_option("--labelled", f.labelled, "ConvAI2 JSON with 0/1 ratings (data_volunteers.json, data_intermediate.json)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--pool", f.pool, "extra unlabelled ConvAI2 JSON (export_*.json)")->check(CLI::ExistingFile);
}

}  // namespace

void add_satisfaction_commands(CLI::App& app, Action& action) {
  auto ef = std::make_shared<SatisfactionFlags>();
  CLI::App* eval = app.add_subcommand("eval-satisfaction",
                                      "satisfaction baselines on the ConvAI2 ratings: P/R/F1 of the unsatisfied class, AUC");
  add_data_flags(*eval, *ef);
  eval->add_option("--json", ef->json_out, "also write the report as JSON here");
  eval->add_option("--bundle", ef->bundle,
                   "dialogue bundle: its tokenizer for the estimator rows, its model for the uncertainty row");
  eval->add_option("--seeds", ef->seeds, "seeds per learned estimator")->capture_default_str();
  eval->add_option("--rotations", ef->rotations,
                   "also rotate the five folds (2-5): every fold the test split once, a cross-validated table after the first")
      ->check(CLI::Range(1, trainer::kSplitFolds))
      ->capture_default_str();
  add_estimator_flags(*eval, *ef);
  eval->callback([&action, ef] { action = [ef] { return run_eval(*ef); }; });

  auto tf = std::make_shared<SatisfactionFlags>();
  CLI::App* train = app.add_subcommand("train-satisfaction",
                                       "train the satisfaction estimator into a new bundle (a copy of --bundle)");
  add_data_flags(*train, *tf);
  train->add_option("--bundle", tf->bundle, "dialogue bundle to extend (its tokenizer is shared)")->required();
  train->add_option("--out", tf->out, "new bundle directory")->required();
  train->add_option("--recipe", tf->recipe, "supervised (ST train), weak (label model only) or both")
      ->check(CLI::IsMember({"supervised", "weak", "both"}))
      ->capture_default_str();
  train->add_option("--seed", tf->seed)->capture_default_str();
  train->add_option("--store", tf->store, "also train on the users' thumbs (ST) harvested in this store");
  train->add_option("--max-ask-rate", tf->max_ask_rate,
                    "the threshold flags at most this share of the rated valid replies (the server asks for feedback "
                    "on each); 1: the threshold of best F1")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  add_estimator_flags(*train, *tf);
  add_labeling_functions_flag(*train, *tf);
  train->callback([&action, tf] { action = [tf] { return run_train(*tf); }; });

  auto lf = std::make_shared<SatisfactionFlags>();
  CLI::App* report = app.add_subcommand("lf-report", "coverage, overlap, conflict and accuracy of each labeling function");
  add_data_flags(*report, *lf);
  report->add_option("--store", lf->store,
                     "also each function's coverage on the replies the server judged in this store, and its "
                     "agreement with the users' thumbs");
  add_labeling_functions_flag(*report, *lf);
  report->callback([&action, lf] { action = [lf] { return run_lf_report(*lf); }; });

  auto df = std::make_shared<SatisfactionFlags>();
  CLI::App* drift = app.add_subcommand("lf-drift",
                                       "what serve's drift alerts say on the ConvAI2 replies as they came, and on users "
                                       "who grow unhappier");
  add_data_flags(*drift, *df);
  drift->add_option("--block", df->drift.block, "judged replies per comparison (serve --drift-block)")
      ->check(CLI::Range(std::size_t{100}, std::size_t{1'000'000}))
      ->capture_default_str();
  drift->add_option("--min-shift", df->drift.min_shift, "serve --drift-min-shift")->capture_default_str();
  drift->add_option("--repeats", df->repeats, "draws per unsatisfied share")->capture_default_str();
  drift->add_option("--seed", df->seed)->capture_default_str();
  add_labeling_functions_flag(*drift, *df);
  drift->callback([&action, df] { action = [df] { return run_lf_drift(*df); }; });
}

}  // namespace selffeed::app
