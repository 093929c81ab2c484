// `selffeed eval-satisfaction` and `selffeed lf-report`: the satisfaction baselines and the
// weak-supervision report on the ConvAI2 human judgements.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <unordered_map>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
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
  int epochs = 8;
  std::size_t weak_sample = 6000;
  satisfaction::EstimatorConfig estimator;
  // Start the estimator from the dialogue bundle's embeddings and context encoder (it then
  // takes that encoder's shape instead of `estimator`'s).
  bool init_encoder = false;
  double learning_rate = 1e-3;
  // train-satisfaction only
  std::string out;
  std::string recipe = "supervised";
  std::uint64_t seed = 1;
  std::string store;  // also the users' thumbs (ST examples) harvested in this store
};


using Data = trainer::SatisfactionData;

Result<Data> load(const SatisfactionFlags& f) { return trainer::load_satisfaction_data(f.labelled, f.pool); }

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

// Tunes the threshold on valid, reports on test.
template <class Score>
BinaryMetrics tuned_on_valid(const std::vector<SatisfactionExample>& data, Score&& score) {
  Scored valid = score_split(data, Split::kValid, score);
  Scored test = score_split(data, Split::kTest, score);
  return satisfaction::evaluate_binary(test.scores, test.labels, satisfaction::best_threshold(valid.scores, valid.labels));
}

json metrics_json(const BinaryMetrics& m) {
  return {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}, {"auc", m.auc},
          {"accuracy", m.accuracy}, {"threshold", m.threshold}, {"examples", m.examples}};
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
  o.seed = seed;
  return o;
}

// Training pairs for the estimator: the labelled train split (hard targets), a sample of
// the unlabelled pool with the label model's probabilities (soft targets), and the
// labelled valid split that picks the epoch and the threshold.
using PairSet = trainer::SatisfactionPairs;
// The ST labels users gave with thumbs in a store (read-only), deleted users excluded.
Result<std::size_t> add_thumbs(const std::string& store_dir, PairSet& set) {
  SELFFEED_ASSIGN_OR_RETURN(auto store, store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly}));
  SELFFEED_ASSIGN_OR_RETURN(trainer::HarvestedExamples harvested, trainer::load_harvested(*store));
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

TrainingSets training_sets(const Data& d, const satisfaction::LabelModel& label_model, std::size_t weak_sample,
                           std::mt19937_64& rng) {
  TrainingSets sets;
  trainer::SatisfactionSplits splits = trainer::satisfaction_splits(d.labelled);
  sets.supervised = {std::move(splits.train.contexts), {splits.train.labels.begin(), splits.train.labels.end()}};
  sets.valid_contexts = std::move(splits.valid.contexts);
  sets.valid_labels = std::move(splits.valid.labels);
  sets.weak = trainer::weak_labels(label_model, d.unlabelled, weak_sample, rng);
  return sets;
}

int run_eval(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  std::vector<SatisfactionInput> train_inputs;
  std::vector<int> train_labels;
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& e : d->labelled) {
    ++counts[static_cast<int>(e.split)];
    if (e.split != Split::kTrain) continue;
    train_inputs.push_back(e.input);
    train_labels.push_back(e.label);
  }
  auto label_model = trainer::fit_label_model(*d);
  if (!label_model.ok()) return fail(label_model.status());
  satisfaction::NaiveBayes nb = satisfaction::NaiveBayes::fit(train_inputs, train_labels);

  std::vector<std::pair<std::string, BinaryMetrics>> rows;
  Scored test = score_split(d->labelled, Split::kTest, [](const SatisfactionInput&) { return 0.0; });
  rows.emplace_back("always unsatisfied (trivial)", satisfaction::evaluate_binary(test.scores, test.labels, 0.5));
  rows.emplace_back("paper regexes", [&] {
    Scored s = score_split(d->labelled, Split::kTest, [](const SatisfactionInput& in) {
      return satisfaction::paper_regex_unsatisfied(in.user_reply) ? 0.0 : 1.0;
    });
    return satisfaction::evaluate_binary(s.scores, s.labels, 0.5);
  }());
  rows.emplace_back("naive Bayes, bag of words (ST train)",
                    tuned_on_valid(d->labelled, [&](const SatisfactionInput& in) { return nb.probability(in); }));
  rows.emplace_back("label model alone (no labels)", tuned_on_valid(d->labelled, [&](const SatisfactionInput& in) {
                      return label_model->probability(satisfaction::apply_labeling_functions(in));
                    }));

  // Rows that need a dialogue bundle: the uncertainty baseline and the learned estimators
  // (3 seeds each, mean and spread).
  std::vector<std::pair<std::string, std::vector<BinaryMetrics>>> seeded;
  if (!f.bundle.empty()) {
    auto dialogue_model = dialogue::DialogueModel::load(f.bundle);
    if (!dialogue_model.ok()) return fail(dialogue_model.status());
    // Uncertainty (paper 2.5): the dialogue model's softmax probability of the bot's
    // actual answer against 19 other bot answers, given the context before it.
    std::vector<std::string> bot_answers;
    for (const auto& e : d->labelled) bot_answers.push_back(e.input.bot_reply);
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::size_t> pick(0, bot_answers.size() - 1);
    std::unordered_map<const SatisfactionInput*, double> confidence;
    std::vector<std::string> contexts;
    std::vector<std::vector<std::string>> candidates;
    std::vector<const SatisfactionInput*> order;
    for (const auto& e : d->labelled) {
      if (e.split == Split::kTrain) continue;
      std::vector<std::string> c = {e.input.bot_reply};
      while (c.size() < 20) c.push_back(bot_answers[pick(rng)]);
      contexts.push_back(format_context(e.input.history));
      candidates.push_back(std::move(c));
      order.push_back(&e.input);
    }
    auto scores = (*dialogue_model)->score(contexts, candidates);
    if (!scores.ok()) return fail(scores.status());
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::vector<float>& s = (*scores)[i];
      double top = *std::max_element(s.begin(), s.end()), sum = 0;
      for (float x : s) sum += std::exp(x - top);
      confidence[order[i]] = std::exp(s[0] - top) / sum;
    }
    rows.emplace_back("uncertainty: dialogue model P(bot answer) of 20",
                      tuned_on_valid(d->labelled, [&](const SatisfactionInput& in) { return confidence.at(&in); }));

    TrainingSets sets = training_sets(*d, *label_model, f.weak_sample, rng);
    const std::vector<std::string>& valid_contexts = sets.valid_contexts;
    const std::vector<int>& valid_labels = sets.valid_labels;
    std::vector<Recipe> recipes = {
        {"estimator, supervised (ST train)", sets.supervised},
        {"estimator, weakly supervised (label model, no hand labels)", sets.weak},
        {"estimator, supervised + weak", sets.both()},
    };
    const trainer::SatisfactionSet test_set = trainer::satisfaction_splits(d->labelled).test;
    for (const Recipe& r : recipes) {
      std::vector<BinaryMetrics> runs;
      for (int seed = 1; seed <= f.seeds; ++seed) {
        trainer::SatisfactionTrainOptions o = estimator_options(f, **dialogue_model, static_cast<std::uint64_t>(seed));
        o.train_contexts = r.set.contexts;
        o.train_targets = r.set.targets;
        o.valid_contexts = valid_contexts;
        o.valid_labels = valid_labels;
        auto trained = trainer::train_satisfaction(o);
        if (!trained.ok()) return fail(trained.status());
        auto scores = trained->model->score(test_set.contexts);
        if (!scores.ok()) return fail(scores.status());
        runs.push_back(satisfaction::evaluate_binary(*scores, test_set.labels, trained->model->threshold()));
        std::fprintf(stderr, "%s, seed %d: test F1 %.3f AUC %.3f (best epoch %d)\n", r.name.c_str(), seed,
                     runs.back().f1, runs.back().auc, trained->best_epoch);
      }
      seeded.emplace_back(r.name, std::move(runs));
    }
  }

  std::printf("ConvAI2 satisfaction labels: %zu train / %zu valid / %zu test (split: FNV-1a of the dialogue id mod 5)\n",
              counts[0], counts[1], counts[2]);
  std::printf("Unlabelled pool for the label model: %zu replies (train dialogues only)\n\n", d->unlabelled.size());
  std::printf("| method (test split) | precision | recall | F1 | AUC | accuracy | threshold |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  json report = {{"split_counts", {{"train", counts[0]}, {"valid", counts[1]}, {"test", counts[2]}}},
                 {"unlabelled_pool", d->unlabelled.size()}, {"rows", json::array()}};
  for (const auto& [name, m] : rows) {
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", name.c_str(), m.precision, m.recall, m.f1, m.auc,
                m.accuracy, m.threshold);
    json row = metrics_json(m);
    row["method"] = name;
    report["rows"].push_back(row);
  }
  for (const auto& [name, runs] : seeded) {
    auto stat = [&](auto field) {
      double mean = 0, sq = 0;
      for (const BinaryMetrics& m : runs) mean += field(m);
      mean /= static_cast<double>(runs.size());
      for (const BinaryMetrics& m : runs) sq += (field(m) - mean) * (field(m) - mean);
      return std::pair<double, double>(mean, std::sqrt(sq / static_cast<double>(runs.size())));
    };
    auto p = stat([](const BinaryMetrics& m) { return m.precision; });
    auto r = stat([](const BinaryMetrics& m) { return m.recall; });
    auto f1 = stat([](const BinaryMetrics& m) { return m.f1; });
    auto auc = stat([](const BinaryMetrics& m) { return m.auc; });
    auto acc = stat([](const BinaryMetrics& m) { return m.accuracy; });
    std::printf("| %s (%zu seeds) | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | per seed |\n",
                name.c_str(), runs.size(), p.first, p.second, r.first, r.second, f1.first, f1.second, auc.first,
                auc.second, acc.first, acc.second);
    json row = {{"method", name}, {"seeds", runs.size()}, {"f1_mean", f1.first}, {"f1_sd", f1.second},
                {"auc_mean", auc.first}, {"auc_sd", auc.second}, {"precision_mean", p.first}, {"recall_mean", r.first},
                {"accuracy_mean", acc.first}};
    report["rows"].push_back(row);
  }
  std::printf("\nPrecision, recall and F1 are of the unsatisfied class; thresholds and epochs are chosen on valid.\n");
  if (Status s = write_report(f.json_out, report.dump(2)); !s.ok()) return fail(s);
  return 0;
}

int run_lf_report(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto label_model = trainer::fit_label_model(*d);
  if (!label_model.ok()) return fail(label_model.status());
  const auto& functions = satisfaction::labeling_functions();
  const std::size_t m = functions.size();
  std::vector<std::vector<Vote>> pool;
  for (const auto& e : d->unlabelled) pool.push_back(satisfaction::apply_labeling_functions(e.input));
  std::printf("Labeling functions on %zu unlabelled replies; empirical accuracy on the labelled VALID split.\n\n",
              pool.size());
  std::printf("| function | votes | coverage | overlap | conflict | learned accuracy | valid accuracy (n) |\n");
  std::printf("|---|:---:|---:|---:|---:|---:|---:|\n");
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
    std::printf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %s |\n", functions[j].name.c_str(), side, covered / n,
                overlapped / n, conflicted / n, label_model->accuracies()[j],
                seen > 0 ? (std::to_string(right / seen).substr(0, 5) + " (" + std::to_string(static_cast<int>(seen)) + ")").c_str()
                         : "- (0)");
  }
  std::printf("\nLearned class prior P(satisfied) = %.3f after %d EM iterations.\n", label_model->prior(),
              label_model->iterations());
  return 0;
}

// Trains the estimator and writes a new bundle: a copy of --bundle plus satisfaction.{json,pt}.
int run_train(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto label_model = trainer::fit_label_model(*d);
  if (!label_model.ok()) return fail(label_model.status());
  auto dialogue_model = dialogue::DialogueModel::load(f.bundle);
  if (!dialogue_model.ok()) return fail(dialogue_model.status());
  std::error_code ec;
  if (std::filesystem::exists(f.out, ec)) return fail(already_exists_error("'" + f.out + "' exists; bundles are immutable"));
  std::mt19937_64 rng(f.seed);
  TrainingSets sets = training_sets(*d, *label_model, f.weak_sample, rng);
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
                           {"train_examples", chosen.contexts.size()},
                           {"thumbs_from_store", thumbs},
                           {"best_epoch", trained->best_epoch},
                           {"valid_auc", trained->valid_auc},
                           {"valid_f1", trained->valid_f1},
                           {"test", metrics_json(test)}}
                          .dump(2)
                          .c_str());
  return 0;
}

void add_estimator_flags(CLI::App& cmd, SatisfactionFlags& f) {
  cmd.add_option("--epochs", f.epochs, "estimator training epochs")->capture_default_str();
  cmd.add_option("--lr", f.learning_rate, "estimator learning rate (Adam)")->capture_default_str();
  cmd.add_option("--weak-sample", f.weak_sample, "unlabelled replies used for weak training")->capture_default_str();
  cmd.add_option("--d-model", f.estimator.d_model, "estimator width")->capture_default_str();
  cmd.add_option("--layers", f.estimator.n_layers, "estimator Transformer layers")->capture_default_str();
  cmd.add_option("--ffn-size", f.estimator.ffn_size, "estimator feed-forward width")->capture_default_str();
  cmd.add_flag("--init-encoder", f.init_encoder,
               "start the estimator from the dialogue bundle's embeddings and context encoder (and take its shape)");
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
  add_estimator_flags(*train, *tf);
  train->callback([&action, tf] { action = [tf] { return run_train(*tf); }; });

  auto lf = std::make_shared<SatisfactionFlags>();
  CLI::App* report = app.add_subcommand("lf-report", "coverage, overlap, conflict and accuracy of each labeling function");
  add_data_flags(*report, *lf);
  report->callback([&action, lf] { action = [lf] { return run_lf_report(*lf); }; });
}

}  // namespace selffeed::app
