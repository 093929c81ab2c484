// selffeed::satisfaction: is the user satisfied with the bot's previous answer?
//
// The gate of the self-feeding loop. Three families of estimators, all scoring
// P(satisfied) for a (bot answer, user reply) pair seen in its conversation:
//   - the paper's baselines: six regexes (RE2, linear time on untrusted text);
//   - weak supervision: labeling functions whose accuracies a label model learns from
//     their agreements on unlabelled data, without any labels (one-coin Dawid-Skene EM);
//   - learned models: a bag-of-words naive Bayes reference and the Transformer estimator
//     (its own embeddings and encoder, per-speaker mean pooling, linear, sigmoid) trained on hard or
//     probabilistic labels.
// Metrics follow the paper: precision, recall and F1 of the *unsatisfied* class.
//
//   SatisfactionInput in{.bot_reply = "lol. i never eat them!", .user_reply = "what?"};
//   bool complaint = paper_regex_unsatisfied(in.user_reply);
//   std::vector<Vote> votes = apply_labeling_functions(in);
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/status.h"
#include "selffeed/dialogue/dialogue.h"

namespace selffeed::satisfaction {

// One judgement: the bot's answer, the user's reply to it, and what came before.
struct SatisfactionInput {
  std::vector<std::string> history;  // utterances before the bot's answer, oldest first
  std::string bot_reply;
  std::string user_reply;
  // Explicit thumbs on the bot's answer, when the user gave one (1 up, 0 down).
  std::optional<int> thumbs;
  // The dialogue model's probability for the bot's answer among alternatives, when known.
  std::optional<double> bot_confidence;
};

// "__p2__ <bot answer> __p1__ <user reply>": what the estimator reads (never the user's
// reply alone).
std::string satisfaction_context(const SatisfactionInput& in);

// ---- the paper's regex baseline ----------------------------------------------------

// True when any of the six patterns of the paper's feedback classifier matches the user's
// reply (case-insensitive): "i ... said/asked/told", "not ... making sense", "um/uh",
// "you ... what?", "what ... you mean/refer/talk ... ?", "what ... to do with ... ?".
bool paper_regex_unsatisfied(std::string_view user_reply);

// ---- labeling functions ------------------------------------------------------------

enum class Vote : std::int8_t { kAbstain = -1, kUnsatisfied = 0, kSatisfied = 1 };

struct LabelingFunction {
  std::string name;
  std::string description;
  std::function<Vote(const SatisfactionInput&)> apply;
};

// The built-in labeling functions (at least 10), in a stable order.
const std::vector<LabelingFunction>& labeling_functions();
std::vector<Vote> apply_labeling_functions(const SatisfactionInput& in);
// The votes of `functions` (built-ins or not), in their order.
std::vector<Vote> apply_labeling_functions(std::span<const LabelingFunction> functions, const SatisfactionInput& in);
std::vector<std::string> names_of(std::span<const LabelingFunction> functions);

// Labeling functions an operator writes without a build, from what the users say ("you
// keep changing the subject"): each votes `vote` when its pattern (RE2: case-insensitive,
// linear time on untrusted text) matches the user's reply, or the bot's answer, and
// abstains otherwise. A file holds one a line, "NAME VOTE FIELD PATTERN": VOTE satisfied
// or unsatisfied, FIELD reply or answer, PATTERN the rest of the line; blank lines and
// lines starting with # are skipped. Names are [a-z0-9_]+, unique, and no built-in's.
//
//   # users who call the bot out
//   called_a_robot  unsatisfied  reply  \byou( are|'re) (a|an) (robot|bot|machine)\b
enum class PatternField : std::uint8_t { kUserReply, kBotAnswer };
Result<LabelingFunction> pattern_labeling_function(std::string name, Vote vote, PatternField field,
                                                   const std::string& pattern);
Result<std::vector<LabelingFunction>> load_labeling_functions(const std::string& path);
// The built-ins followed by the functions of `path` (none when it is empty).
Result<std::vector<LabelingFunction>> labeling_functions_with(const std::string& path);

// ---- label model -------------------------------------------------------------------

// The unweighted reference for the label model: P(satisfied) as the share of satisfied
// votes, add-one smoothed ((sat + 1) / (sat + unsat + 2); 0.5 when every function abstains).
// Every function counts the same however reliable it is. The label model's EM starts here.
double majority_vote(std::span<const Vote> votes);

// Whether the functions contradict each other: one votes satisfied and another
// unsatisfied (the drift monitor's conflict share; lf-report's contested replies).
bool votes_conflict(std::span<const Vote> votes);

struct LabelModelOptions {
  int max_iterations = 200;
  double tolerance = 1e-6;
};

// Learns, from unlabelled votes alone (rows = examples, columns = functions), how each
// labeling function behaves on each true class (including how often it abstains) and the
// class prior, assuming functions are independent given the true label (Dawid-Skene, EM
// from the majority vote).
class LabelModel {
 public:
  static Result<LabelModel> fit(std::span<const std::vector<Vote>> votes, const LabelModelOptions& options = {});
  // P(satisfied | votes); the prior when every function abstains.
  double probability(std::span<const Vote> votes) const;
  // Per function: P(its vote is the true class | it voted).
  const std::vector<double>& accuracies() const { return accuracies_; }
  double prior() const { return prior_; }
  int iterations() const { return iterations_; }

 private:
  double posterior(std::span<const Vote> votes) const;
  // theta_[j][y][o]: P(function j outputs o | class y); o = abstain, unsatisfied, satisfied.
  std::vector<std::array<std::array<double, 3>, 2>> theta_;
  std::vector<std::array<std::array<double, 3>, 2>> log_theta_;  // what posterior() sums
  std::vector<double> accuracies_;
  double prior_ = 0.5;
  int iterations_ = 0;
};

// ---- metrics -----------------------------------------------------------------------

struct BinaryMetrics {
  double precision = 0;  // of the unsatisfied class
  double recall = 0;
  double f1 = 0;
  double accuracy = 0;
  // Share of examples predicted unsatisfied: how often the bot would ask for feedback.
  double ask_rate = 0;
  double auc = 0;        // ROC-AUC of 1 - P(satisfied) for detecting unsatisfied
  double threshold = 0;  // predicted unsatisfied when P(satisfied) < threshold
  std::size_t examples = 0;
};

// `scores` are P(satisfied), `labels` 1 (satisfied) or 0.
BinaryMetrics evaluate_binary(std::span<const double> scores, std::span<const int> labels, double threshold);
// The threshold that maximises unsatisfied-class F1 on (scores, labels) among those that
// call at most `max_ask_rate` of the examples unsatisfied: the server asks for feedback on
// each of those, and F1 alone would have it ask on most turns when the signal is weak.
// When none within the budget has an F1 above 0, the one that flags nothing.
double best_threshold(std::span<const double> scores, std::span<const int> labels, double max_ask_rate = 1.0);
// How far P(satisfied) is from how often the users were satisfied: the examples in
// `bins` equal-width bins of their score (empty ones left out), each with its mean score and
// its share of label 1, and the expected calibration error, the bins' |mean score - share
// satisfied| weighted by their examples (0: calibrated; AUC cannot see this, since it reads
// only the order of the scores, while the server's threshold reads their values).
struct CalibrationBin {
  double low = 0;  // the bin is [low, high), the last one [low, 1]
  double high = 0;
  std::size_t examples = 0;
  double mean_score = 0;
  double satisfied_share = 0;
};
struct Calibration {
  std::vector<CalibrationBin> bins;
  double expected_error = 0;
};
Calibration calibration(std::span<const double> scores, std::span<const int> labels, int bins = 5);
// 1-based ranks of `values` in ascending order, tied values sharing their mean rank.
std::vector<double> average_ranks(std::span<const double> values);

// A bootstrap that resamples whole groups (the dialogues of a test split: replies of one
// dialogue share a rater, so they are not independent). `group_of[i]` is example i's group,
// 0 to groups - 1; `statistic` gets the example indices of one resample (an example appears
// once per draw of its group). Gives the 2.5th and 97.5th percentiles of the statistic over
// `resamples` resamples and the share of resamples where it is above zero.
struct BootstrapInterval {
  double low = 0;
  double high = 0;
  double share_above_zero = 0;
};
BootstrapInterval group_bootstrap(std::span<const std::size_t> group_of, int resamples, std::uint64_t seed,
                                  const std::function<double(std::span<const std::size_t>)>& statistic);

// ---- naive Bayes reference ---------------------------------------------------------

// Multinomial naive Bayes over the words of the bot answer and the user reply (kept apart).
class NaiveBayes {
 public:
  static NaiveBayes fit(std::span<const SatisfactionInput> inputs, std::span<const int> labels);
  double probability(const SatisfactionInput& in) const;  // P(satisfied)

 private:
  struct Counts;
  std::shared_ptr<const Counts> counts_;
};

// Words of a text for the count-based models: normalized, split on spaces.
std::vector<std::string> words_of(std::string_view text);

// ---- the learned estimator ------------------------------------------------------------

struct EstimatorConfig {
  // Its own embedding table and encoder, smaller than the dialogue model's: ~1k rated
  // replies train it. d = 128 had the best ConvAI2 valid AUC among 32/64/128/256
  // (EVALUATION.md); init_encoder_from() needs the dialogue model's shape instead.
  int d_model = 128;
  int n_heads = 2;
  int n_layers = 1;
  int ffn_size = 64;
  int max_tokens = 64;  // of satisfaction_context(), keeping the most recent
  bool scale_embeddings = true;
};

// P(satisfied) = sigmoid(Linear(pooled encoder output)) over satisfaction_context(), as
// in the paper, except that the encoder's output is mean-pooled over the bot's answer and
// over the user's reply apart, and the two means are concatenated. Trained with binary
// cross-entropy against hard (0/1) or probabilistic targets (noise-aware training on the
// label model's output); the loss is the batch mean (ParlAI summed it; a mean keeps the
// learning rate independent of the batch size). Not thread-safe: give it one owner.
class SatisfactionModel {
 public:
  static Result<std::unique_ptr<SatisfactionModel>> create(const EstimatorConfig& config,
                                                           std::shared_ptr<const dialogue::Tokenizer> tokenizer,
                                                           std::uint64_t seed);
  // Reads satisfaction.json and satisfaction.pt from a bundle directory. kNotFound when the
  // bundle has no satisfaction model, kDataLoss when its files are corrupt.
  static Result<std::unique_ptr<SatisfactionModel>> load(const std::string& bundle_dir,
                                                         std::shared_ptr<const dialogue::Tokenizer> tokenizer);
  ~SatisfactionModel();

  // Copies the embedding table and the context encoder of a dialogue bundle into this
  // estimator (transfer: 859 labelled replies are too few to learn word meanings from).
  // The estimator keeps its own copy; training it never changes the dialogue model.
  // kInvalidArgument when the shapes differ (the config must be the dialogue model's),
  // kNotFound / kDataLoss for a missing or corrupt weights file.
  Status init_encoder_from(const std::string& dialogue_bundle_dir);

  // One Adam step on (context, target) pairs; returns the loss before the step.
  Result<float> train_step(std::span<const std::string> contexts, std::span<const double> targets,
                           double learning_rate);
  // P(satisfied) for each context, in one batch.
  Result<std::vector<double>> score(std::span<const std::string> contexts) const;

  // Below this P(satisfied) the user is taken to be unsatisfied (chosen on valid).
  double threshold() const;
  void set_threshold(double threshold);
  const EstimatorConfig& config() const;

  // Writes satisfaction.json and satisfaction.pt into `bundle_dir` (which must exist).
  Status save(const std::string& bundle_dir) const;

  // Whether a bundle directory holds an estimator (its config file).
  static bool present_in(const std::string& bundle_dir);
  // Copies an estimator's files from one bundle directory to another; nothing when the
  // first has none.
  static Status copy_files(const std::string& from_bundle, const std::string& to_bundle);

 private:
  struct Impl;
  explicit SatisfactionModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace selffeed::satisfaction
