#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "selffeed/common/log.h"
#include "selffeed/common/records.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Result<SatisfactionTrainReport> train_satisfaction(const SatisfactionTrainOptions& o) {
  if (o.train_contexts.empty() || o.train_contexts.size() != o.train_targets.size()) {
    return invalid_argument_error("satisfaction training needs one target per context");
  }
  if (o.valid_contexts.empty() || o.valid_contexts.size() != o.valid_labels.size()) {
    return invalid_argument_error("satisfaction training needs labelled validation data");
  }
  if (o.epochs <= 0 || o.batch_size <= 0) return invalid_argument_error("epochs and batch size must be positive");
  if (!o.init_encoder_from.empty() && !o.init_estimator_from.empty()) {
    return invalid_argument_error("start from a dialogue encoder or from an estimator, not both");
  }
  std::unique_ptr<satisfaction::SatisfactionModel> model;
  if (o.init_estimator_from.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(model, satisfaction::SatisfactionModel::create(o.config, o.tokenizer, o.seed));
  } else {
    SELFFEED_ASSIGN_OR_RETURN(model, satisfaction::SatisfactionModel::load(o.init_estimator_from, o.tokenizer));
  }
  if (!o.init_encoder_from.empty()) SELFFEED_RETURN_IF_ERROR(model->init_encoder_from(o.init_encoder_from));

  // The best epoch is kept on disk (a model is its weights file) and read back at the end.
  namespace fs = std::filesystem;
  fs::path best_dir = fs::temp_directory_path() / ("selffeed-sat-" + std::to_string(::getpid()) + "-" +
                                                   std::to_string(o.seed) + "-" + std::to_string(unix_millis()));
  fs::create_directories(best_dir);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{best_dir};

  SatisfactionTrainReport report;
  report.valid_auc = -1;
  std::mt19937_64 rng(o.seed);
  std::vector<std::size_t> order(o.train_contexts.size());
  std::iota(order.begin(), order.end(), 0);
  // When fine-tuning, epoch 0 only measures the starting weights: they stay unless an
  // epoch of training beats them on valid.
  for (int epoch = o.init_estimator_from.empty() ? 1 : 0; epoch <= o.epochs; ++epoch) {
    if (epoch > 0) std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i = 0; epoch > 0 && i < order.size(); i += static_cast<std::size_t>(o.batch_size)) {
      std::vector<std::string> contexts;
      std::vector<double> targets;
      for (std::size_t j = i; j < std::min(order.size(), i + static_cast<std::size_t>(o.batch_size)); ++j) {
        contexts.push_back(o.train_contexts[order[j]]);
        targets.push_back(o.train_targets[order[j]]);
      }
      SELFFEED_RETURN_IF_ERROR(model->train_step(contexts, targets, o.learning_rate).status());
    }
    SELFFEED_ASSIGN_OR_RETURN(std::vector<double> scores, model->score(o.valid_contexts));
    const double threshold = satisfaction::best_threshold(scores, o.valid_labels, o.max_ask_rate);
    satisfaction::BinaryMetrics m = satisfaction::evaluate_binary(scores, o.valid_labels, threshold);
    SELFFEED_LOGGER("trainer")->debug("satisfaction epoch {}: valid AUC {:.3f} F1 {:.3f}", epoch, m.auc, m.f1);
    if (m.auc > report.valid_auc) {
      report.valid_auc = m.auc;
      report.valid_f1 = m.f1;
      report.valid_ask_rate = m.ask_rate;
      report.best_epoch = epoch;
      model->set_threshold(threshold);
      SELFFEED_RETURN_IF_ERROR(model->save(best_dir.string()));
    }
  }
  SELFFEED_ASSIGN_OR_RETURN(report.model, satisfaction::SatisfactionModel::load(best_dir.string(), o.tokenizer));
  return report;
}

}  // namespace selffeed::trainer
