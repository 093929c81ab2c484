// `selffeed eval-satisfaction` and `selffeed lf-report`: the satisfaction baselines and the
// weak-supervision report on the ConvAI2 human judgements.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {
namespace {

using nlohmann::json;
using satisfaction::BinaryMetrics;
using satisfaction::SatisfactionInput;
using satisfaction::Vote;
using trainer::SatisfactionExample;
using trainer::Split;

int fail(const Status& status) {
  std::cerr << "selffeed: " << status.to_string() << "\n";
  return 1;
}

struct SatisfactionFlags {
  std::vector<std::string> labelled;  // ConvAI2 files with ratings
  std::vector<std::string> pool;      // extra unlabelled ConvAI2 files
  std::string json_out;
};

struct Data {
  std::vector<SatisfactionExample> labelled;    // rated examples, all splits
  std::vector<SatisfactionExample> unlabelled;  // pool for the label model (train dialogues only)
};

Result<Data> load(const SatisfactionFlags& f) {
  Data d;
  for (const std::string& path : f.labelled) {
    SELFFEED_ASSIGN_OR_RETURN(auto all, trainer::load_convai2_satisfaction(path, /*labelled_only=*/false));
    for (auto& e : all) {
      if (e.label >= 0) d.labelled.push_back(e);
      else if (e.split == Split::kTrain) d.unlabelled.push_back(std::move(e));
    }
  }
  for (const std::string& path : f.pool) {
    SELFFEED_ASSIGN_OR_RETURN(auto all, trainer::load_convai2_satisfaction(path, /*labelled_only=*/false));
    for (auto& e : all) {
      if (e.split == Split::kTrain) d.unlabelled.push_back(std::move(e));
    }
  }
  if (d.labelled.empty()) return invalid_argument_error("no rated examples in the --labelled files");
  return d;
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

Result<satisfaction::LabelModel> fit_label_model(const Data& d) {
  std::vector<std::vector<Vote>> votes;
  for (const auto& e : d.unlabelled) votes.push_back(satisfaction::apply_labeling_functions(e.input));
  for (const auto& e : d.labelled) {
    if (e.split == Split::kTrain) votes.push_back(satisfaction::apply_labeling_functions(e.input));  // labels unused
  }
  return satisfaction::LabelModel::fit(votes);
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
  auto label_model = fit_label_model(*d);
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
  std::printf("\nPrecision, recall and F1 are of the unsatisfied class; thresholds are tuned on valid.\n");
  if (!f.json_out.empty()) {
    std::FILE* out = std::fopen(f.json_out.c_str(), "w");
    if (out == nullptr) return fail(invalid_argument_error("cannot write '" + f.json_out + "'"));
    std::fprintf(out, "%s\n", report.dump(2).c_str());
    std::fclose(out);
  }
  return 0;
}

int run_lf_report(const SatisfactionFlags& f) {
  auto d = load(f);
  if (!d.ok()) return fail(d.status());
  auto label_model = fit_label_model(*d);
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
  eval->callback([&action, ef] { action = [ef] { return run_eval(*ef); }; });

  auto lf = std::make_shared<SatisfactionFlags>();
  CLI::App* report = app.add_subcommand("lf-report", "coverage, overlap, conflict and accuracy of each labeling function");
  add_data_flags(*report, *lf);
  report->callback([&action, lf] { action = [lf] { return run_lf_report(*lf); }; });
}

}  // namespace selffeed::app
