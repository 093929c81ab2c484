#include "live_models.h"

#include "selffeed/common/context.h"
#include "selffeed/common/log.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::app {
namespace {

class LearnedScorer final : public SatisfactionScorer {
 public:
  explicit LearnedScorer(std::unique_ptr<satisfaction::SatisfactionModel> model) : model_(std::move(model)) {}
  Result<std::vector<double>> score(std::span<const std::string> contexts) override { return model_->score(contexts); }
  double threshold() const override { return model_->threshold(); }
  std::string_view name() const override { return "learned estimator"; }

 private:
  std::unique_ptr<satisfaction::SatisfactionModel> model_;
};

class RegexScorer final : public SatisfactionScorer {
 public:
  Result<std::vector<double>> score(std::span<const std::string> contexts) override {
    std::vector<double> scores;
    scores.reserve(contexts.size());
    for (const std::string& context : contexts) {
      const std::vector<std::string> utterances = split_context(context);
      const std::string user_reply = utterances.empty() ? std::string() : utterances.back();
      scores.push_back(satisfaction::paper_regex_unsatisfied(user_reply) ? 0.0 : 1.0);
    }
    return scores;
  }
  double threshold() const override { return 0.5; }
  std::string_view name() const override { return "paper regexes"; }
};

}  // namespace

Result<std::shared_ptr<LiveModels>> load_live_models(const std::string& bundle_dir, ScorerKind kind) {
  auto models = std::make_shared<LiveModels>();
  models->bundle_dir = bundle_dir;
  SELFFEED_ASSIGN_OR_RETURN(models->dialogue, dialogue::DialogueModel::load(bundle_dir));
  if (models->dialogue->candidate_pool_size() == 0) {
    return failed_precondition_error("bundle " + bundle_dir + " has no candidate pool to answer from");
  }
  models->version = models->dialogue->info().version;
  if (kind != ScorerKind::kRegex) {
    auto learned = satisfaction::SatisfactionModel::load(bundle_dir, models->dialogue->shared_tokenizer());
    if (learned.ok()) {
      models->satisfaction = std::make_unique<LearnedScorer>(std::move(*learned));
    } else if (kind == ScorerKind::kModel || learned.status().code() != StatusCode::kNotFound) {
      return learned.status().with_context("satisfaction model of " + bundle_dir);
    }
  }
  if (!models->satisfaction) models->satisfaction = std::make_unique<RegexScorer>();
  SELFFEED_LOGGER("serve")->info("model {} from {}: {} candidates, satisfaction by {} (threshold {:.3f})",
                                 models->version, bundle_dir, models->dialogue->candidate_pool_size(),
                                 models->satisfaction->name(), models->satisfaction->threshold());
  return models;
}

}  // namespace selffeed::app
