// LibTorch building blocks shared by the dialogue and satisfaction models (and only by
// them: this header includes torch). The encoder follows the self-feeding paper: a
// post-LayerNorm Transformer with sinusoidal positions, no embedding scaling, no dropout,
// and a masked mean over the non-pad positions.
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/transformercoder.h>
#include <torch/types.h>

namespace selffeed::dialogue::nn {

inline constexpr std::int64_t kPadId = 0;

// The bi-encoder's weights file in a bundle: a module archive with the children
// "embedding", "context_encoder" and "candidate_encoder" (read by satisfaction/ to start
// its estimator from the dialogue model's context encoder).
inline constexpr const char* kDialogueWeightsFile = "dialogue.pt";

struct EncoderOptions {
  std::int64_t vocab_size = 0;
  std::int64_t d_model = 300;
  std::int64_t n_heads = 2;
  std::int64_t n_layers = 2;
  std::int64_t ffn_size = 32;
  std::int64_t max_positions = 1024;
  // Token embeddings are multiplied by sqrt(d_model) before the positions are added, as in
  // Vaswani et al. Without it, N(0, 1/d) embeddings are ~sqrt(d) times smaller than the
  // sinusoids and the encoder mostly sees positions (the paper could skip it because
  // fastText vectors initialised its embeddings).
  bool scale_embeddings = true;
};

// Normal(0, d^-0.5) with the pad row zeroed (ParlAI's initialisation).
torch::nn::Embedding make_embedding(std::int64_t vocab_size, std::int64_t d_model);

class TransformerEncoderImpl : public torch::nn::Module {
 public:
  // `embedding` may be shared between encoders, so the encoder does not register it: the
  // owning model registers it once (otherwise its optimizer would see it twice).
  TransformerEncoderImpl(const EncoderOptions& options, torch::nn::Embedding embedding);

  // tokens: [batch, time] int64, padded with kPadId; every row has at least one token.
  // Returns [batch, d_model]: the mean of token_states() over the non-pad positions.
  torch::Tensor forward(const torch::Tensor& tokens);
  // The encoder's output at every position: [batch, time, d_model].
  torch::Tensor token_states(const torch::Tensor& tokens);

 private:
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::TransformerEncoder layers_{nullptr};
  torch::Tensor positions_;  // [max_positions, d_model], a buffer
  double embedding_scale_ = 1.0;
};
TORCH_MODULE(TransformerEncoder);

// Mean of states [batch, time, d] over the positions where `keep` [batch, time] is true;
// zeros for a row that keeps nothing.
torch::Tensor masked_mean(const torch::Tensor& states, const torch::Tensor& keep);

// Pads `rows` (token ids) into a [rows, max_len] int64 tensor.
torch::Tensor pad_batch(const std::vector<std::vector<std::int64_t>>& rows);

}  // namespace selffeed::dialogue::nn
