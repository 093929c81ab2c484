// selffeed::dialogue: the DIALOGUE/FEEDBACK model of the self-feeding chatbot.
//
// A SentencePiece tokenizer with the context tags as special pieces, and a Transformer
// bi-encoder (separate context and candidate encoders sharing one embedding table,
// masked mean pooling, dot-product score) that ranks a fixed candidate pool. A model
// bundle is one immutable directory with everything needed to serve it.
//
//   SELFFEED_ASSIGN_OR_RETURN(auto model, DialogueModel::load("models/v3"));
//   SELFFEED_ASSIGN_OR_RETURN(auto replies, model->rank({{.context = ctx}}, /*k=*/5));
//
// Thread safety: a DialogueModel is not thread-safe; give it one owner (the inference
// worker, or the trainer). Tokenizer is immutable and safe to share.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::dialogue {

// ---- runtime ----------------------------------------------------------------------

struct ThreadOptions {
  // LibTorch (OpenMP) intra-op threads. OpenBLAS keeps its own pool, so on a 2-core machine
  // one torch thread plus OpenBLAS's default avoids oversubscription. Default: 1
  int intra_op = 1;
};

// Applies `options` to this process. Call once, before any model runs.
void configure_threads(const ThreadOptions& options);

// The resolved path of the BLAS library mapped into this process (LibTorch's matrix
// products run there), or "" when none is mapped. Reference BLAS is ~30x slower than
// OpenBLAS, so this is checked by a test and logged at startup.
std::string loaded_blas_library();

// ---- tokenizer --------------------------------------------------------------------

// Lower-cases and spaces out punctuation the way PersonaChat is distributed; applied to
// every text before it is tokenized, in training and in serving alike.
std::string normalize_text(std::string_view text);

struct TokenizerOptions {
  // Target vocabulary size (a smaller one is used when the corpus is tiny). Default: 8000
  int vocab_size = 8000;
};

class Tokenizer {
 public:
  // A unigram SentencePiece model trained on `texts` (normalized first), with __p1__,
  // __p2__ and __null__ as single pieces and pad id 0.
  static Result<std::shared_ptr<const Tokenizer>> train(const std::vector<std::string>& texts,
                                                        const TokenizerOptions& options);
  // kNotFound when missing; kDataLoss when not a SentencePiece model;
  // kFailedPrecondition when it lacks the special pieces.
  static Result<std::shared_ptr<const Tokenizer>> load(const std::string& path);
  static Result<std::shared_ptr<const Tokenizer>> from_serialized(std::string serialized);
  ~Tokenizer();

  std::vector<std::int64_t> encode(std::string_view text) const;
  // Model input: never empty (the unk id stands in for empty text) and at most `limit`
  // ids, keeping the last ones (contexts) or the first ones (candidates).
  enum class Keep { kFirst, kLast };
  std::vector<std::int64_t> encode_for_model(std::string_view text, int limit, Keep keep) const;
  std::vector<std::string> pieces(std::string_view text) const;
  int piece_id(std::string_view piece) const;
  int vocab_size() const;
  // The model file's bytes (what load() reads back).
  const std::string& serialized() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- lexical matching -------------------------------------------------------------

// TF-IDF cosine between texts: words of normalize_text() with the speaker tags left out,
// IDF = log((1 + N) / (1 + df)) + 1 over the N documents it was fitted on. The TF-IDF
// baseline of every evaluation and the lexical term of the model's score both use it.
class TfIdf {
 public:
  using Vector = std::unordered_map<std::string, double>;  // word -> weight, unit length

  TfIdf();  // no documents: every word weighs the same
  explicit TfIdf(std::span<const std::string> documents);

  Vector vector(std::string_view text) const;
  static double cosine(const Vector& a, const Vector& b);
  // cosine(query, documents[i]) for every document it was fitted on, in one pass over
  // the query words' postings.
  std::vector<float> cosine_to_documents(std::string_view query) const;

 private:
  struct Posting {
    std::uint32_t document;
    float weight;
  };
  static Vector term_counts(std::string_view text);
  void weigh(Vector& counts) const;  // counts -> unit-length TF-IDF
  std::unordered_map<std::string, double> idf_;
  double unseen_idf_ = 1;
  std::unordered_map<std::string, std::vector<Posting>> postings_;
  std::size_t documents_ = 0;
};

// ---- model ------------------------------------------------------------------------

struct ModelConfig {
  // The paper's shape: 2 layers, 2 heads, d = 300, FFN 32.
  int d_model = 300;
  int n_heads = 2;
  int n_layers = 2;
  int ffn_size = 32;
  // Longer contexts keep their most recent tokens; longer candidates their first ones.
  int context_tokens = 64;
  int candidate_tokens = 32;
  // Divide dot-product scores by sqrt(d_model). The paper uses the raw dot product; from
  // random embeddings its scores start so large that the softmax saturates (a 300-step
  // PersonaChat probe: 0.128 -> 0.163 valid hits@1 with scaling).
  bool scaled_scores = true;
  // Multiply token embeddings by sqrt(d_model) (see nn::EncoderOptions). The paper did
  // not, but it started from fastText vectors; we start from random ones.
  bool scale_embeddings = true;
  // Score = dot product + lexical_weight x TF-IDF cosine (IDF over the candidate pool).
  // Encoders trained on 2 cores miss much of the exact word overlap between context and
  // reply that TF-IDF sees (PersonaChat valid hits@1/20 of our best model: 0.287 dense,
  // 0.364 with the term; EVALUATION.md). Trained bundles get it fitted on held-out data
  // (trainer::fit_lexical_weight). 0 = dense only; bundles from before the option.
  double lexical_weight = 0;
  // Score += persona_weight x the largest TF-IDF cosine of the reply to a sentence of the
  // bot's persona (RankRequest::persona), like PersonaChat's rankers that read "your
  // persona" lines: replies about the bot's own facts rank higher (PersonaChat valid
  // hits@1/20, EVALUATION.md). Trained bundles get it fitted on held-out data so that the
  // bot draws on its persona as often as people do (trainer::fit_persona_weight).
  // 0 = personas are ignored; bundles from before the option.
  double persona_weight = 0;
};

struct OptimizerOptions {
  // Adamax with linear warm-up, then inverse-square-root decay (the paper's setting).
  double learning_rate = 0.0025;
  int warmup_steps = 500;
};

struct TextPair {
  std::string context;  // formatted by format_context()
  std::string target;
};

struct RankRequest {
  std::string context;
  // The bot's persona, one fact per sentence ("i have two dogs ."); empty: none. With a
  // persona weight, its sentences are replies too, scored like the pool's.
  std::vector<std::string> persona;
  // The bot's previous reply: never offered again as the top answer (paper's
  // previous-response filter). Empty when there is none.
  std::string previous_reply;
  // Earlier utterances of the conversation, either side, beyond those in the context.
  std::vector<std::string> earlier_utterances;
  // Questions the bot has already asked in the conversation.
  std::vector<std::string> asked_questions;
  // The bot's own earlier answers in the conversation: the pets, family and favorites it
  // gave itself there it keeps, as those of `persona`.
  std::vector<std::string> own_answers;
  // The name the bot gave itself earlier in the conversation (self_given_name), or empty.
  std::string bot_name;
  // The occupation the bot gave itself (self_stated_occupation), or empty.
  std::string bot_occupation;
  // false in the middle of a conversation, when a greeting would be out of place.
  bool may_greet = true;
  // Offer replies that repeat an utterance of the context or an earlier one, or one of
  // their statements (DialogueModel::repeats_context), that ask one of `asked_questions`
  // again (the same cosine, question against question, each from where it opens as one:
  // question_clause(); or, in any words, how the partner is when one of `own_answers`
  // asked it: asks_how_you_are()), that only ask the partner's question back
  // (DialogueModel::only_asks_back), that give the bot a name other than `bot_name` or an
  // occupation other than `bot_occupation`, that contradict the pets, family or favorites
  // of `persona` or `own_answers` (contradicts(), "i have 3 dogs" for "i have two dogs ."),
  // that leave out the bot's name, occupation, or pets or family when the partner's last
  // utterance asks about them (asked_about()) and the bot has them, that tell how the bot
  // is when the partner did not ask (tells_how_one_is(), asks_how_one_is()), or that open
  // with a greeting when `may_greet` is false, only when nothing else is left (the first
  // three kinds before the others). A persona sentence that answers what the partner asks
  // is offered although it was said before. false: the raw ranking, to measure how often
  // it does these.
  bool block_repeats = true;
  // Pool replies never offered, whatever is left (ascending candidate ids): the replies of
  // users deleted since the pool was built. Null or empty: none.
  std::shared_ptr<const std::vector<std::int64_t>> withdrawn;
};

struct RankedReply {
  std::int64_t candidate_id = -1;  // index into the candidate pool; -1: a persona sentence
  std::string text;
  float score = 0;        // dot product (+ the lexical term)
  float probability = 0;  // softmax over the whole pool and the persona's sentences
  // A reply that RankRequest::block_repeats held back, offered because nothing else was left.
  bool held_back = false;
};

// What a bundle says about itself beyond the weights.
struct BundleInfo {
  std::string version;              // e.g. "v3"; 1..128 bytes
  std::string metrics_json = "{}";  // a JSON object
  std::string lineage_json = "{}";  // a JSON object: data, counts, seed, git commit
};

class DialogueModel {
 public:
  // A freshly initialised model (deterministic for a given seed).
  static Result<std::unique_ptr<DialogueModel>> create(const ModelConfig& config,
                                                       std::shared_ptr<const Tokenizer> tokenizer,
                                                       std::uint64_t seed);
  // Loads a bundle or checkpoint directory written by save(): weights, tokenizer, config,
  // and, when present, the optimizer state and the candidate pool with its encodings.
  // kNotFound (missing directory or file), kDataLoss (corrupt file), kFailedPrecondition
  // (unknown format version). Messages name the file.
  static Result<std::unique_ptr<DialogueModel>> load(const std::string& dir);
  // The tokenizer of the bundle at `dir` alone, without its weights or pool: what its
  // satisfaction estimator needs (a pool at its bound is a 240 MB file to read).
  static Result<std::shared_ptr<const Tokenizer>> load_tokenizer(const std::string& dir);
  ~DialogueModel();

  const ModelConfig& config() const;
  const Tokenizer& tokenizer() const;
  std::shared_ptr<const Tokenizer> shared_tokenizer() const;
  const BundleInfo& info() const;

  // One optimizer step on `batch` with in-batch negatives (softmax cross-entropy over the
  // batch's targets). Returns the loss before the step. Batches need >= 2 pairs.
  Result<float> train_step(std::span<const TextPair> batch, const OptimizerOptions& options);
  // The same loss and the in-batch hits@1, without a step (FEEDBACK evaluation).
  struct InBatchResult {
    float loss = 0;
    float hits_at_1 = 0;
  };
  Result<InBatchResult> evaluate_in_batch(std::span<const TextPair> batch) const;
  // Optimizer steps taken so far (restored by load()).
  std::int64_t steps() const;
  // Set ModelConfig::lexical_weight and persona_weight (kInvalidArgument unless finite
  // and >= 0).
  Status set_lexical_weight(double weight);
  Status set_persona_weight(double weight);

  // scores[i][j] = score(contexts[i], candidates[i][j]), with personas[i] as the persona
  // of contexts[i] when `personas` is not empty (one per context).
  Result<std::vector<std::vector<float>>> score(std::span<const std::string> contexts,
                                                std::span<const std::vector<std::string>> candidates,
                                                std::span<const std::vector<std::string>> personas = {}) const;

  // Replaces the candidate pool and precomputes its encodings.
  Status set_candidate_pool(std::vector<std::string> texts);
  std::size_t candidate_pool_size() const;
  const std::vector<std::string>& candidate_pool() const;
  // Top `k` replies from the pool for each request, scored in one matrix product. With a
  // persona weight, the request's persona sentences compete as replies as they stand,
  // scored like the pool's replies (the persona term gives each its full weight): asked
  // "what is your favorite food?", the bot can say "my favorite food is pizza ." where no
  // reply of the pool says it (EVALUATION.md, "Saying the persona"). kFailedPrecondition
  // when the pool is empty.
  Result<std::vector<std::vector<RankedReply>>> rank(std::span<const RankRequest> requests, int k) const;
  // For each pair, the share of the candidate pool that scores above its target in its
  // context, as served (the lexical term included, no persona): 0 when the model would
  // rather say the target than anything in its pool; about 0.5 for a reply that has
  // nothing to do with the context. kFailedPrecondition when the pool is empty.
  Result<std::vector<double>> rank_in_pool(std::span<const TextPair> pairs) const;
  // Whether `reply` (nearly) repeats an utterance of `context`: their TF-IDF cosine, over
  // the pool's IDF when the lexical term is on, is at least kRepeatCosine; or one of its
  // statements (sentences_of, not questions) of kRepeatedStatementWords words or more is
  // that close to such a statement of an utterance ("that sounds like fun" after "that
  // sounds like fun ! i paint ."). The lexical term pulls such parrots up (ParlAI's rankers
  // block exact repeats of the history for the same reason); PersonaChat's human replies
  // almost never are one (EVALUATION.md).
  static constexpr double kRepeatCosine = 0.7;
  static constexpr std::size_t kRepeatedStatementWords = 3;
  bool repeats_context(std::string_view reply, std::string_view context) const;
  // Whether `reply` does nothing but ask back a question of the context's last utterance,
  // the partner's: every sentence of it is a question, and one has a TF-IDF cosine of at
  // least kAskedBackCosine to one of the partner's ("so what do you do for work ?" after
  // "What do you do for a living?"). People answer first and then ask back; the lexical
  // term pulls up the pool's many copies of the question instead (EVALUATION.md).
  static constexpr double kAskedBackCosine = 0.5;
  bool only_asks_back(std::string_view reply, std::string_view context) const;
  // The largest TF-IDF cosine of `reply` to a sentence of `persona` (IDF over the candidate
  // pool): how much of the reply is about the persona's facts; 0 without a persona.
  double persona_cosine(std::string_view reply, std::span<const std::string> persona) const;

  // Writes `dir` (created; must not exist yet unless `overwrite`): bundle.json, tokenizer
  // model, weights, optimizer state (when with_optimizer), candidate pool and encodings.
  struct SaveOptions {
    bool with_optimizer = false;
    bool overwrite = false;
  };
  Status save(const std::string& dir, const BundleInfo& info, const SaveOptions& options) const;

 private:
  struct Impl;
  explicit DialogueModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace selffeed::dialogue
