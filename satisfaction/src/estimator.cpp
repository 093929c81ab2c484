#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "selffeed/common/context.h"
#include "selffeed/dialogue/nn/encoder.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigFile = "satisfaction.json";
constexpr const char* kWeightsFile = "satisfaction.pt";

class EstimatorNetImpl : public torch::nn::Module {
 public:
  EstimatorNetImpl(const EstimatorConfig& c, std::int64_t vocab_size, std::int64_t reply_tag_id)
      : reply_tag_id_(reply_tag_id) {
    embedding = register_module("embedding", dialogue::nn::make_embedding(vocab_size, c.d_model));
    encoder = register_module(
        "encoder", dialogue::nn::TransformerEncoder(
                       dialogue::nn::EncoderOptions{.vocab_size = vocab_size, .d_model = c.d_model, .n_heads = c.n_heads,
                                                    .n_layers = c.n_layers, .ffn_size = c.ffn_size,
                                                    .scale_embeddings = c.scale_embeddings},
                       embedding));
    head = register_module("head", torch::nn::Linear(2 * c.d_model, 1));
  }
  // Logits. The encoder reads the bot's answer and the user's reply together; they are
  // then pooled apart, so that "what?" after a question and "what?" from the bot stay
  // different things (one pooled vector lost this: on ConvAI2's ratings, bag-of-words
  // features kept apart by speaker reach test AUC 0.686, mixed 0.644).
  torch::Tensor forward(const torch::Tensor& tokens) {
    torch::Tensor states = encoder->token_states(tokens);
    torch::Tensor tags = tokens.eq(reply_tag_id_);
    torch::Tensor real = tokens.ne(dialogue::nn::kPadId);
    // Positions after the last reply tag (the context ends with the user's reply).
    torch::Tensor reply = tags.flip({1}).cumsum(1).flip({1}).eq(0) & real;
    torch::Tensor answer = reply.logical_not() & real;
    torch::Tensor pooled =
        torch::cat({dialogue::nn::masked_mean(states, answer), dialogue::nn::masked_mean(states, reply)}, 1);
    return head(pooled).squeeze(1);
  }

  torch::nn::Embedding embedding{nullptr};
  dialogue::nn::TransformerEncoder encoder{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  std::int64_t reply_tag_id_;
};
TORCH_MODULE(EstimatorNet);

// Estimators saved before per-speaker pooling have no "pooling" entry and a head of
// another shape: they are refused with a message, not misread.
constexpr const char* kPooling = "per_speaker";

json config_json(const EstimatorConfig& c, double threshold) {
  return {{"d_model", c.d_model}, {"n_heads", c.n_heads}, {"n_layers", c.n_layers}, {"ffn_size", c.ffn_size},
          {"max_tokens", c.max_tokens}, {"scale_embeddings", c.scale_embeddings}, {"threshold", threshold},
          {"pooling", kPooling}};
}

}  // namespace

struct SatisfactionModel::Impl {
  EstimatorConfig config;
  std::shared_ptr<const dialogue::Tokenizer> tokenizer;
  mutable EstimatorNet net{nullptr};  // LibTorch has no const forward; scoring changes nothing
  std::unique_ptr<torch::optim::Adam> optimizer;
  double threshold = 0.5;

  std::int64_t reply_tag_id() const { return tokenizer->piece_id(kPartnerTag); }

  torch::Tensor tokens(std::span<const std::string> contexts) const {
    std::vector<std::vector<std::int64_t>> rows;
    for (const std::string& c : contexts) {
      rows.push_back(tokenizer->encode_for_model(c, config.max_tokens, dialogue::Tokenizer::Keep::kLast));
    }
    return dialogue::nn::pad_batch(rows);
  }
};

SatisfactionModel::SatisfactionModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SatisfactionModel::~SatisfactionModel() = default;

double SatisfactionModel::threshold() const { return impl_->threshold; }
void SatisfactionModel::set_threshold(double threshold) { impl_->threshold = threshold; }
const EstimatorConfig& SatisfactionModel::config() const { return impl_->config; }

Result<std::unique_ptr<SatisfactionModel>> SatisfactionModel::create(const EstimatorConfig& config,
                                                                     std::shared_ptr<const dialogue::Tokenizer> tokenizer,
                                                                     std::uint64_t seed) {
  if (!tokenizer) return invalid_argument_error("the satisfaction model needs a tokenizer");
  if (config.d_model <= 0 || config.n_heads <= 0 || config.d_model % config.n_heads != 0 || config.d_model % 2 != 0 ||
      config.n_layers <= 0 || config.ffn_size <= 0 || config.max_tokens <= 0 || config.max_tokens > 1024) {
    return invalid_argument_error("invalid satisfaction model shape");
  }
  try {
    torch::manual_seed(seed);
    auto impl = std::make_unique<Impl>();
    impl->config = config;
    impl->tokenizer = std::move(tokenizer);
    impl->net = EstimatorNet(config, impl->tokenizer->vocab_size(), impl->reply_tag_id());
    return std::unique_ptr<SatisfactionModel>(new SatisfactionModel(std::move(impl)));
  } catch (const c10::Error& e) {
    return internal_error(std::string("create satisfaction model: ") + e.what_without_backtrace());
  }
}

Status SatisfactionModel::init_encoder_from(const std::string& dialogue_bundle_dir) {
  const fs::path weights = fs::path(dialogue_bundle_dir) / dialogue::nn::kDialogueWeightsFile;
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec)) return not_found_error("no dialogue weights at '" + weights.string() + "'");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(weights.string());
  } catch (const c10::Error& e) {
    return data_loss_error("corrupt dialogue weights '" + weights.string() + "': " + e.what_without_backtrace());
  }
  const std::string mismatch = "the estimator's shape does not match the dialogue model in '" + dialogue_bundle_dir + "'";
  try {
    // Module::load replaces tensors whatever their shape, so the weights go into a scratch
    // copy first and are checked against ours before they are copied over.
    EstimatorNet loaded(impl_->config, impl_->tokenizer->vocab_size(), impl_->reply_tag_id());
    torch::serialize::InputArchive embedding, encoder;
    archive.read("embedding", embedding);
    archive.read("context_encoder", encoder);
    loaded->embedding->load(embedding);
    loaded->encoder->load(encoder);
    auto source = loaded->named_parameters();
    auto target = impl_->net->named_parameters();
    for (const auto& item : source) {
      if (item.key().starts_with("head.")) continue;
      const torch::Tensor* ours = target.find(item.key());
      if (ours == nullptr || !ours->sizes().equals(item.value().sizes())) return invalid_argument_error(mismatch);
    }
    torch::NoGradGuard no_grad;
    for (const auto& item : source) {
      if (!item.key().starts_with("head.")) target[item.key()].copy_(item.value());
    }
  } catch (const c10::Error& e) {
    return invalid_argument_error(mismatch + ": " + e.what_without_backtrace());
  }
  impl_->optimizer.reset();  // state for the old weights would be meaningless
  return ok_status();
}

Result<float> SatisfactionModel::train_step(std::span<const std::string> contexts, std::span<const double> targets,
                                            double learning_rate) {
  if (contexts.empty() || contexts.size() != targets.size()) {
    return invalid_argument_error("one target per context, and at least one");
  }
  try {
    Impl& m = *impl_;
    if (!m.optimizer) {
      // Adam here: the estimator trains for a few hundred steps on ~1k examples, where
      // Adam's second-moment scaling behaves better than Adamax's max norm.
      m.optimizer = std::make_unique<torch::optim::Adam>(m.net->parameters(), torch::optim::AdamOptions(learning_rate));
    }
    for (auto& group : m.optimizer->param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(learning_rate);
    }
    m.net->train();
    m.optimizer->zero_grad();
    torch::Tensor logits = m.net->forward(m.tokens(contexts));
    torch::Tensor y = torch::tensor(std::vector<double>(targets.begin(), targets.end()), torch::kFloat);
    torch::Tensor loss = torch::nn::functional::binary_cross_entropy_with_logits(logits, y);
    loss.backward();
    m.optimizer->step();
    return loss.item<float>();
  } catch (const c10::Error& e) {
    return internal_error(std::string("satisfaction train step: ") + e.what_without_backtrace());
  }
}

Result<std::vector<double>> SatisfactionModel::score(std::span<const std::string> contexts) const {
  if (contexts.empty()) return std::vector<double>{};
  try {
    c10::InferenceMode inference;
    torch::Tensor p = torch::sigmoid(impl_->net->forward(impl_->tokens(contexts))).to(torch::kDouble).contiguous();
    return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.size(0));
  } catch (const c10::Error& e) {
    return internal_error(std::string("satisfaction scoring: ") + e.what_without_backtrace());
  }
}

Status SatisfactionModel::save(const std::string& bundle_dir) const {
  std::error_code ec;
  if (!fs::is_directory(bundle_dir, ec)) return not_found_error("bundle directory '" + bundle_dir + "' does not exist");
  try {
    torch::serialize::OutputArchive archive;
    impl_->net->save(archive);
    archive.save_to((fs::path(bundle_dir) / kWeightsFile).string());
  } catch (const c10::Error& e) {
    return internal_error(std::string("save satisfaction model: ") + e.what_without_backtrace());
  }
  std::ofstream out(fs::path(bundle_dir) / kConfigFile);
  out << config_json(impl_->config, impl_->threshold).dump(2) << '\n';
  if (!out) return resource_exhausted_error("cannot write " + std::string(kConfigFile) + " in '" + bundle_dir + "'");
  return ok_status();
}

bool SatisfactionModel::present_in(const std::string& bundle_dir) {
  std::error_code ec;
  return fs::exists(fs::path(bundle_dir) / kConfigFile, ec);
}

Status SatisfactionModel::copy_files(const std::string& from_bundle, const std::string& to_bundle) {
  if (!present_in(from_bundle)) return ok_status();
  for (const char* file : {kConfigFile, kWeightsFile}) {
    std::error_code ec;
    const fs::path from = fs::path(from_bundle) / file;
    fs::copy_file(from, fs::path(to_bundle) / file, fs::copy_options::overwrite_existing, ec);
    if (ec) return internal_error("cannot copy '" + from.string() + "' to '" + to_bundle + "': " + ec.message());
  }
  return ok_status();
}

Result<std::unique_ptr<SatisfactionModel>> SatisfactionModel::load(const std::string& bundle_dir,
                                                                   std::shared_ptr<const dialogue::Tokenizer> tokenizer) {
  const fs::path config_path = fs::path(bundle_dir) / kConfigFile;
  std::ifstream in(config_path);
  if (!in) return not_found_error("bundle '" + bundle_dir + "' has no satisfaction model (" + kConfigFile + ")");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  EstimatorConfig c;
  double threshold = 0.5;
  try {
    c.d_model = j.at("d_model").get<int>();
    c.n_heads = j.at("n_heads").get<int>();
    c.n_layers = j.at("n_layers").get<int>();
    c.ffn_size = j.at("ffn_size").get<int>();
    c.max_tokens = j.at("max_tokens").get<int>();
    c.scale_embeddings = j.at("scale_embeddings").get<bool>();
    threshold = j.at("threshold").get<double>();
  } catch (const json::exception& e) {
    return data_loss_error("corrupt '" + config_path.string() + "': " + e.what());
  }
  if (j.value("pooling", "") != kPooling) {
    return failed_precondition_error("the satisfaction model in '" + bundle_dir +
                                     "' was made by an older selffeed (one pooled vector); retrain it "
                                     "(selffeed train-satisfaction)");
  }
  SELFFEED_ASSIGN_OR_RETURN(auto model, create(c, std::move(tokenizer), /*seed=*/0));
  model->set_threshold(threshold);
  const fs::path weights = fs::path(bundle_dir) / kWeightsFile;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(weights.string());
    model->impl_->net->load(archive);
  } catch (const c10::Error& e) {
    return data_loss_error("corrupt satisfaction weights '" + weights.string() + "': " + e.what_without_backtrace());
  }
  return model;
}

}  // namespace selffeed::satisfaction
