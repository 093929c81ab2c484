// selffeed::trainer: data loaders, the training loop, and ranking evaluation.
//
//   SELFFEED_ASSIGN_OR_RETURN(auto hh, load_parlai_text(path, {.both_sides = true}));
//   SELFFEED_ASSIGN_OR_RETURN(auto report, train_dialogue(options));   // resumable
//   SELFFEED_ASSIGN_OR_RETURN(auto m, evaluate_ranking(*model, valid));
//   RankingMetrics baseline = evaluate_tfidf(valid);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "selffeed/common/status.h"
#include "selffeed/dialogue/dialogue.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/store/store.h"

namespace selffeed::trainer {

// One ranking example: a formatted context, its gold reply, (for evaluation) the fixed
// candidates to rank, the gold among them, and the responder's persona when the data
// has one (PersonaChat's "your persona:" lines).
struct RankingExample {
  std::string context;
  std::string target;
  std::vector<std::string> candidates;
  std::vector<std::string> persona;
};

// ---- loaders ----------------------------------------------------------------------

struct ParlaiLoadOptions {
  // Also emit the partner's turns as targets (the original PersonaChat train set has
  // both sides; the shared subset has only "self"). Default: false
  bool both_sides = false;
};

// ParlAI text format ("N text<TAB>label[<TAB>reward<TAB>cand1|cand2|...]"), as in
// PersonaChat/ConvAI2. Persona lines become the persona of the speaker they describe
// ("your persona:" the responder's, "partner's persona:" the partner's), __SILENCE__ means
// the responder speaks first, contexts are the last two utterances (format_context).
// kNotFound for a missing file, kInvalidArgument (naming the line) for a malformed one.
Result<std::vector<RankingExample>> load_parlai_text(const std::string& path, const ParlaiLoadOptions& options = {});

// Self-feeding JSONL: {"context": ..., "response": ..., "candidates": [...]?} per line.
Result<std::vector<RankingExample>> load_self_feeding_jsonl(const std::string& path);

// Self-dialogue TSV (conv_index, split, topic, turn_index, utterance): every utterance of
// the chosen split is a target, with the two utterances before it as context.
Result<std::vector<RankingExample>> load_self_dialogue_tsv(const std::string& path, const std::string& split);

// Human-bot conversation logs in JSON Lines, one conversation per line:
// {"dialog": [{"speaker": "model" | "human_evaluator", "text": ...}, ...], ...} (the human
// evaluation logs of See et al. 2019, ConvAI2 personas). Every human turn is a target, with
// the two turns before it as context: real people replying in the PersonaChat setting.
// kNotFound for a missing file, kInvalidArgument (naming the line) for a malformed one.
Result<std::vector<RankingExample>> load_human_replies_jsonl(const std::string& path);

// Synthetic-Persona-Chat CSV (Jandaghi et al. 2023: LLM-generated conversations between
// PersonaChat-style personas): the "Best Generated Conversation" column's "User 1: ..." /
// "User 2: ..." lines; every turn is a target with the turns before it as context, as in
// Self-dialogue.
// kNotFound for a missing file, kInvalidArgument for a malformed one.
Result<std::vector<RankingExample>> load_synthetic_persona_chat_csv(const std::string& path);

// Satisfaction data split by a stable hash of the dialogue id: FNV-1a 64 of the id,
// modulo 5: 0-2 train, 3 valid, 4 test (60/20/20). Never tune on test.
// `rotation` r (0-4) shifts the five folds by r, so that over r = 0..4 every fold is the
// test split once (cross-validation); 0 is the split every report and the gate use.
enum class Split { kTrain, kValid, kTest };
inline constexpr int kSplitFolds = 5;
Split split_of(std::string_view dialogue_id, int rotation = 0);
std::string_view split_name(Split split);

struct SatisfactionExample {
  std::string dialogue_id;  // "<file name>#<index>", or the file's dialog_id
  satisfaction::SatisfactionInput input;
  int label = -1;  // 1 satisfied, 0 unsatisfied, -1 unlabelled
  Split split = Split::kTrain;
};

// ConvAI2 wild-evaluation JSON (data_volunteers.json, data_intermediate.json, the
// export_*.json files). A bot utterance followed by a human reply gives one example,
// labelled by the human's 0/1 rating of that utterance when there is one. The export
// files do not mark the bot; there, as in the labelled files, it is participant2.
// With `labelled_only`, unlabelled examples are skipped.
Result<std::vector<SatisfactionExample>> load_convai2_satisfaction(const std::string& path, bool labelled_only);

// The human replies to the bot in ConvAI2 wild-evaluation JSON as dialogue examples
// (the two turns before as context), from dialogues of the train split only: a dialogue
// whose ratings are valid or test data never trains a model.
Result<std::vector<RankingExample>> load_convai2_human_replies(const std::string& path);

// Rated examples as estimator inputs (satisfaction_context()), by split: train for
// fitting, valid for the epoch and the threshold, test for reports and the promotion gate.
struct SatisfactionSet {
  std::vector<std::string> contexts;
  std::vector<int> labels;  // 1 satisfied, 0 unsatisfied
};
struct SatisfactionSplits {
  SatisfactionSet train, valid, test;
};
SatisfactionSplits satisfaction_splits(std::span<const SatisfactionExample> examples);  // unlabelled ones skipped

// The rated examples of ConvAI2 files, and the pool for weak supervision: the unrated
// replies of their train dialogues plus every train-split reply of the `pool_paths`
// (export_*.json). `rotation` assigns the folds as split_of() does (the pool moves with
// it). kInvalidArgument when the labelled files hold no rating or the rotation is not 0-4.
struct SatisfactionData {
  std::vector<SatisfactionExample> labelled;
  std::vector<SatisfactionExample> unlabelled;
};
Result<SatisfactionData> load_satisfaction_data(std::span<const std::string> labelled_paths,
                                                std::span<const std::string> pool_paths = {}, int rotation = 0);

// The label model, fitted on the votes of `functions` over the pool and the labelled train
// split. Labels are never read.
Result<satisfaction::LabelModel> fit_label_model(
    const SatisfactionData& data,
    std::span<const satisfaction::LabelingFunction> functions = satisfaction::labeling_functions());
// Estimator training pairs: satisfaction_context() -> P(satisfied), a hard 0/1 label or a
// probability.
struct SatisfactionPairs {
  std::vector<std::string> contexts;
  std::vector<double> targets;
};
// Soft targets for noise-aware training, for a random sample of `sample` pool replies: the
// label model's ordering of them, each reply's target its rank (ties share one) spread
// evenly over (0, 1). The label model's probabilities themselves are badly calibrated (on
// ConvAI2 its prior settles near 0.12 where ~0.64 of replies are satisfied); learning the
// ranks instead raised the weak estimator's valid AUC from 0.623 to 0.642 (5 seeds; another
// pool sample went the other way, 0.657 to 0.646: weak evidence, see EVALUATION.md).
// `functions` are those the label model was fitted on.
SatisfactionPairs weak_labels(
    const satisfaction::LabelModel& label_model, std::span<const SatisfactionExample> pool, std::size_t sample,
    std::mt19937_64& rng,
    std::span<const satisfaction::LabelingFunction> functions = satisfaction::labeling_functions());

// Gives every example `count` distractors drawn from the other examples' targets (never
// equal to its own), plus its gold at a random position; deterministic for a seed. Used
// for validation slices of data that has no fixed candidates.
void add_random_candidates(std::vector<RankingExample>& examples, int count, std::uint64_t seed);

// Harvested replies are trained on and join the candidate pool, from which the bot answers
// every user: a troll's slur or one user's phone number would be said to the next. A reply
// that carries an email address, a web address, a phone number or a blocked word is kept
// in the store (exports and deletion see it) but never learned from.
class HarvestGuard {
 public:
  HarvestGuard();  // the built-in blocked words: a short list of English profanity
  explicit HarvestGuard(std::vector<std::string> blocked_words);  // instead of the built-in ones
  // One word per line, '#' starts a comment. kNotFound, kInvalidArgument (a line of two words).
  static Result<HarvestGuard> from_file(const std::string& path);
  // Why `text` may not be learned ("email address", "web address", "phone number",
  // kBlockedWord), or nullopt when it may.
  std::optional<std::string_view> refusal(std::string_view text) const;
  static constexpr std::string_view kBlockedWord = "blocked word";

 private:
  std::unordered_set<std::string> blocked_words_;
};

// `text` with each email address, web address and phone number the guard refuses
// replaced by "[email address]", "[web address]" or "[phone number]": for exports that
// leave the machine (`store export --redact`). Blocked words are not personal data and stay.
std::string redact_personal_data(std::string_view text);

// Who is not learned from at all. The guard refuses a reply by its words; a troll's other
// replies are still a troll's ("Playboy", "no... you are a gay"), and a user who types "k"
// twenty times teaches nothing. So a user (or, without a user id, a conversation) with at
// least `min_examples` HB and FB examples is untrusted when the guard refused a blocked
// word in at least `max_blocked_share` of them, or when at least `max_repeated_share` of
// them repeat a reply of theirs given before (the same words, case and punctuation
// aside); none of their HB, FB or ST examples is returned. A share above 1 turns its rule
// off. On the ConvAI2 wild evaluation (28,430 human messages, 3,360 users or dialogues)
// the defaults distrust 26 of them and leave out 290 replies (1.0%) beyond the 165 the
// guard refuses (EVALUATION.md, "Trust").
struct TrustRule {
  std::size_t min_examples = 5;
  double max_blocked_share = 0.2;
  double max_repeated_share = 0.5;
  // A troll who answers feedback requests with lines from elsewhere teaches junk in clean
  // words. With HarvestOptions::relevance, a teacher of at least `min_feedback` FB examples
  // is judged by their mean relevance (0: the model ranks each first, 0.5: chance): the
  // simulated users' honest feedback averaged 0.16-0.29 per user, lines of other dialogues
  // 0.42-0.51 (EVALUATION.md, "Trolls who teach lines from elsewhere").
  std::size_t min_feedback = 10;
  double max_feedback_rank = 0.4;
  bool off() const { return max_blocked_share > 1 && max_repeated_share > 1 && max_feedback_rank > 1; }
};

struct HarvestOptions {
  std::uint64_t after_seq = 0;  // only examples with seq > after_seq
  // Caps what one user teaches, so that no one user can outweigh the others: of a user's
  // HB and FB examples, `max_per_user` are returned, drawn by their text (so the same ones
  // whatever order they were committed in); 0: no cap. Examples without a user id count
  // per conversation.
  std::size_t max_per_user = 0;
  TrustRule trust;
  // Judges every trainable HB example again, before the cap: P(satisfied) of its
  // satisfaction context (the bot's answer, the user's reply) for a batch of them, and
  // those below `rejudge_threshold` are left out. What an older estimator harvested is
  // judged by a newer one, so that a complaint it took for satisfaction is not imitated.
  // Empty: none.
  using Judge = std::function<Result<std::vector<double>>(std::span<const std::string> contexts)>;
  Judge rejudge;
  double rejudge_threshold = 0.5;
  // How far below what else it could say the model ranks each FB example's target in its
  // context, for TrustRule::max_feedback_rank: the share of its replies scored above it
  // (0: above them all; a line drawn from elsewhere is near 0.5). Empty: not judged.
  using Relevance = std::function<Result<std::vector<double>>(std::span<const dialogue::TextPair> feedback)>;
  Relevance relevance;
  // Teachers distrusted beforehand, whatever the rule finds here: the promotion gate passes
  // those the candidate's retraining did not learn from.
  std::set<std::string> distrusted;
};

// What the trust rule saw of one teacher (a user, or "conversation <id>").
struct TeacherTrust {
  std::string teacher;
  std::size_t replies = 0;   // HB and FB, the guard's refusals included
  std::size_t blocked = 0;   // of them, with a blocked word
  std::size_t repeated = 0;  // the same words as an earlier reply of theirs
  std::size_t feedback = 0;  // FB examples
  std::optional<double> feedback_rank;  // the mean relevance of those judged, when they were
  bool trusted = true;
};

// What the server harvested, read from its store (a read-only open works beside the
// running server). Examples of deleted users are never returned, nor HB and FB examples
// whose target the guard refuses, nor anything of untrusted users. Each list is in an
// order fixed by the examples' text, so the same harvest gives the same retraining
// whatever order its turns were committed in.
struct HarvestedExamples {
  std::vector<RankingExample> dialogue;  // HB: context -> the user's reply
  std::vector<RankingExample> feedback;  // FB: context -> what the bot should have said
  // One conversation in kFeedbackHoldoutEvery (drawn by a hash of its id) is held out
  // whole: its FB examples, never trained on, are kept for the promotion gate, and its HB
  // examples are not trained on either. An FB example without a conversation (an
  // import) is drawn by its text.
  std::vector<RankingExample> feedback_holdout;
  std::size_t dialogue_held_out = 0;  // HB examples of the held-out conversations
  // ST: the users' thumbs, "__p2__ <bot> __p1__ <user>" -> P(satisfied) in [0, 1].
  SatisfactionPairs thumbs;
  // Thumbs given before the user replied to the answer, whose context the reply in the
  // transcript completed (the estimator reads every answer with its reply).
  std::size_t thumbs_completed = 0;
  // Ratings of an answer its user rated again later (a changed mind), and suggestions of
  // what it could have been that they replaced with another: not trained on.
  std::size_t thumbs_superseded = 0;
  std::size_t suggestions_superseded = 0;
  std::vector<std::uint64_t> dialogue_seqs;  // their sequence numbers, for the lineage
  std::vector<std::uint64_t> feedback_seqs;
  std::vector<std::uint64_t> satisfaction_seqs;
  std::uint64_t watermark = 0;           // the highest seq read
  std::size_t skipped_deleted_users = 0;
  std::map<std::string, std::size_t> refused;  // HarvestGuard::refusal -> examples
  std::size_t over_the_user_cap = 0;           // HB and FB examples beyond `max_per_user`
  // HB and FB examples the same user (or anonymous conversation) gave before, word for
  // word in the same context: trained on once.
  std::size_t repeated_by_their_teacher = 0;
  // Users (or "conversation <id>") the trust rule distrusts, sorted, and their HB, FB and
  // ST examples left out for it (those the guard refused are counted in `refused`).
  std::vector<std::string> untrusted;
  std::size_t examples_of_the_untrusted = 0;
  std::size_t untrusted_for_irrelevant_feedback = 0;  // of `untrusted`, by max_feedback_rank
  std::vector<TeacherTrust> teachers;  // every teacher the trust rule read, by name
  std::size_t rejudged_unsatisfied = 0;  // HB examples `rejudge` left out
};
inline constexpr std::uint64_t kFeedbackHoldoutEvery = 10;
Result<HarvestedExamples> load_harvested(const store::Store& store, const HarvestGuard& guard,
                                         const HarvestOptions& options = {});
// HarvestOptions::relevance by `model`: where it ranks each FB target in its context among
// everything its candidate pool holds (DialogueModel::rank_in_pool).
HarvestOptions::Relevance feedback_relevance(std::shared_ptr<const dialogue::DialogueModel> model);

// ---- promotion gate ---------------------------------------------------------------

// Fixed held-out sets a new bundle must do well on before it goes live.
struct GateData {
  std::vector<RankingExample> personachat;  // PersonaChat valid, with candidates
  std::vector<RankingExample> feedback;     // held-out FB with candidates; may be empty
  SatisfactionSet satisfaction;             // the ST test split; may be empty
};
// Builds the FB part from a store's held-out slice (19 random negatives from the slice's
// own targets); empty when the slice has fewer than 20 examples. The feedback of
// `distrusted` teachers is left out, as the retraining that distrusted them left the rest.
Result<std::vector<RankingExample>> feedback_gate_set(const store::Store& store,
                                                      std::set<std::string> distrusted = {});

struct GateScores {
  double personachat_hits_at_1 = 0;
  std::optional<double> feedback_hits_at_1;  // when GateData::feedback is not empty
  // ROC-AUC of the learned estimator on the ST test split, when there are both.
  std::optional<double> satisfaction_auc;
};
// `estimator` may be null (a bundle without a learned satisfaction model).
Result<GateScores> gate_scores(const dialogue::DialogueModel& model, const satisfaction::SatisfactionModel* estimator,
                               const GateData& data);

struct GateDecision {
  bool promote = false;
  std::string reason;
};
// Promote when the candidate is not worse than the live model by more than `epsilon` on
// PersonaChat hits@1 nor on the satisfaction AUC, and better overall: the sum of its
// scores over the sets both models were measured on.
GateDecision gate_decision(const GateScores& live, const GateScores& candidate, double epsilon);

// ---- evaluation -------------------------------------------------------------------

struct RankingMetrics {
  double hits_at_1 = 0;
  double hits_at_5 = 0;
  double mrr = 0;
  std::size_t examples = 0;
  std::size_t candidates = 0;  // per example (of the first one)
};

// Ranks each example's candidates with the model, each with its persona. kInvalidArgument
// when an example has no candidates or its gold is not among them.
Result<RankingMetrics> evaluate_ranking(const dialogue::DialogueModel& model, std::span<const RankingExample> data);

// A reply draws on a persona when its persona_cosine is at least this: it says one of the
// persona's facts in other words ("i've two dogs" for "i have two dogs .").
inline constexpr double kDrawsOnPersonaCosine = 0.5;

// How often a reply does something, over `examples`: the top reply from the model's whole
// candidate pool as ranked (nothing held back) and as served, and the data's own replies.
struct ReplyRates {
  double ranked = 0;
  double served = 0;
  double people = 0;
  std::size_t examples = 0;
};
// What the top reply, as ranked and as served, does over the first `max_examples`
// examples, against the data's own replies.
struct RepeatRates {
  // Repeats an utterance of its context (DialogueModel::repeats_context).
  ReplyRates repeats;
  // Among those whose context ends in a question: only asks it back (only_asks_back).
  ReplyRates asking_back;
  // Among those whose last utterance neither asks how the responder is nor tells how the
  // partner is (asks_how_one_is()): tells how the responder is ("i'm great ! you ?").
  ReplyRates unasked_how_it_is;
  // Among those with a persona: draws on it (DialogueModel::persona_cosine at least
  // kDrawsOnPersonaCosine); contradicts it: another name or occupation, its pets, family
  // or favorites (contradicts()).
  ReplyRates drawing_on_persona;
  ReplyRates contradicting_persona;
  // Among those whose last utterance asks the responder's name, occupation, pets or family
  // (asked_about()) and whose persona has the answer: gives it (leaves_out_answer() false).
  ReplyRates answering_about_itself;
  // Among those whose own reply draws on a fact of the persona (its sentence of the largest
  // cosine), how often the top reply as served draws on that same fact: the bot answers
  // from its persona where the person did ("i am a nurse" to "what do you do?").
  double same_fact_served = 0;
  std::size_t fact_examples = 0;
};
Result<RepeatRates> evaluate_repeats(const dialogue::DialogueModel& model, std::span<const RankingExample> data,
                                     std::size_t max_examples);

// TF-IDF cosine between the context's words and each candidate's words, IDF taken from the
// distinct candidates of `data`. The reference row of every dialogue evaluation.
Result<RankingMetrics> evaluate_tfidf(std::span<const RankingExample> data);

// Chooses the model's lexical weight (ModelConfig::lexical_weight) as the one of 0, 1, …,
// 40 with the best MRR on `held_out` (MRR rather than hits@1: a few hundred held-out
// examples rank all candidates more stably than they decide the top one; ties go to the
// smaller weight) and sets it on the model. Personas play no part. Needs the model's
// candidate pool (its IDF).
struct LexicalWeightFit {
  double weight = 0;
  RankingMetrics dense;   // weight 0
  RankingMetrics fitted;  // the chosen weight
};
Result<LexicalWeightFit> fit_lexical_weight(dialogue::DialogueModel& model, std::span<const RankingExample> held_out);

// Chooses the model's persona weight (ModelConfig::persona_weight) for serving, and sets
// it on the model: the smallest of 0, 1, …, 40 at which the top reply from the model's
// whole candidate pool, as served, draws on the responder's persona (persona_cosine at
// least kDrawsOnPersonaCosine) at least as often as the gold replies of the `held_out`
// examples that have a persona do: the bot talks about itself as often as people do (40
// when it never does). Not the best MRR over 20 candidates, as the lexical weight: there
// the persona's words single out the gold among other episodes' replies, and the weight
// that wins makes the bot talk about itself two to five times as often as people
// (EVALUATION.md). Fewer than kFewestExamplesToFitLexicalWeight examples with a persona:
// weight 0.
struct PersonaWeightFit {
  double weight = 0;
  std::size_t examples = 0;  // held-out examples with a persona
  double people_rate = 0;    // share of their gold replies that draw on the persona
  double rate_without = 0;   // share of top replies that do at weight 0
  double rate_fitted = 0;    // and at the chosen weight
};
Result<PersonaWeightFit> fit_persona_weight(dialogue::DialogueModel& model, std::span<const RankingExample> held_out);

// ---- training ---------------------------------------------------------------------

// A source of training pairs; each batch is drawn from one source, chosen with
// probability proportional to its weight.
struct DataSource {
  std::string name;
  std::vector<RankingExample> examples;
  double weight = 1.0;
};

struct DialogueTrainOptions {
  // Holds tokenizer.model, state.json, checkpoint-<step>/ and best-<step>/ (named by
  // checkpoint.json and best.json) and the final bundle/. An existing run directory is
  // resumed from its last checkpoint; a kill at any moment leaves one to resume from.
  std::string run_dir;
  std::vector<DataSource> sources;
  std::vector<RankingExample> valid;  // with candidates; drives early stopping
  // Candidate pool of the final bundle (deduplicated by the trainer).
  std::vector<std::string> candidate_pool;
  // At most this many candidates, the first ones of `candidate_pool` after deduplication:
  // every reply is scored on every turn, so latency grows with the pool; 0: no limit.
  std::size_t max_candidates = 0;

  dialogue::ModelConfig model;
  dialogue::TokenizerOptions tokenizer;
  dialogue::OptimizerOptions optimizer;
  int batch_size = 128;
  std::int64_t max_steps = 20000;
  double max_minutes = 0;  // 0 = no time limit
  int validate_every = 250;  // steps
  int patience = 10;         // validations without improvement before stopping
  std::uint64_t seed = 1;
  std::string bundle_version = "v1";
  std::string lineage_json = "{}";  // merged into the bundle's lineage
  // Fine-tune: start from this bundle's weights and tokenizer (`model` and `tokenizer` are
  // then ignored) instead of a fresh model. Empty: train from scratch.
  std::string init_bundle;
  // The final bundle's lexical weight. Unset: fitted on `valid` after training
  // (fit_lexical_weight), or 0 when `valid` has fewer than 100 examples (a handful of
  // examples picks a weight at random). The encoders always train and early-stop on the
  // dense score.
  std::optional<double> lexical_weight;
  // The final bundle's persona weight. Unset: fitted on the examples of `valid` that have
  // a persona (fit_persona_weight), 0 when fewer than 100 have one.
  std::optional<double> persona_weight;
  // Called with a one-line progress report (steps, ex/s, loss, valid hits@1, ETA).
  std::function<void(const std::string&)> on_progress;
};

inline constexpr std::size_t kFewestExamplesToFitLexicalWeight = 100;

struct TrainReport {
  std::int64_t steps = 0;
  double seconds = 0;  // this invocation only
  double examples_per_second = 0;
  double best_valid_hits_at_1 = 0;
  std::int64_t best_step = 0;
  std::string bundle_dir;  // the best model with its candidate pool
  double lexical_weight = 0;
  double persona_weight = 0;
  double valid_hits_at_1_with_lexical = 0;  // the bundle's own score on `valid`
  bool early_stopped = false;
  std::size_t candidates_left_out = 0;  // beyond `max_candidates`
};

Result<TrainReport> train_dialogue(const DialogueTrainOptions& options);

// ---- satisfaction estimator -------------------------------------------------------

struct SatisfactionTrainOptions {
  std::shared_ptr<const dialogue::Tokenizer> tokenizer;
  satisfaction::EstimatorConfig config;
  // Start from this dialogue bundle's embeddings and context encoder (`config` must then
  // be its shape). Empty: random initialisation.
  std::string init_encoder_from;
  // Fine-tune the estimator of this bundle instead (its own config is used). The starting
  // weights compete as epoch 0: fine-tuning never leaves a worse valid AUC.
  std::string init_estimator_from;
  // Training pairs: satisfaction_context() and a target in [0, 1] (hard label or the label
  // model's probability).
  std::vector<std::string> train_contexts;
  std::vector<double> train_targets;
  // Labelled validation data: picks the epoch (best AUC) and the threshold (best F1 among
  // those that flag at most `max_ask_rate` of it: how often the server may ask for feedback).
  std::vector<std::string> valid_contexts;
  std::vector<int> valid_labels;
  double max_ask_rate = 1.0;
  int epochs = 10;
  int batch_size = 32;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
};

struct SatisfactionTrainReport {
  std::unique_ptr<satisfaction::SatisfactionModel> model;  // best epoch, threshold set
  int best_epoch = 0;  // 0: the starting weights were best
  double valid_auc = 0;
  double valid_f1 = 0;
  double valid_ask_rate = 0;  // share of valid the threshold calls unsatisfied
};

Result<SatisfactionTrainReport> train_satisfaction(const SatisfactionTrainOptions& options);

}  // namespace selffeed::trainer

