#include "selffeed/dialogue/nn/encoder.h"

#include <cmath>

#include <torch/nn/init.h>

namespace selffeed::dialogue::nn {

torch::nn::Embedding make_embedding(std::int64_t vocab_size, std::int64_t d_model) {
  torch::nn::Embedding embedding(torch::nn::EmbeddingOptions(vocab_size, d_model).padding_idx(kPadId));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(embedding->weight, 0.0, std::pow(static_cast<double>(d_model), -0.5));
  embedding->weight[kPadId].zero_();
  return embedding;
}

namespace {
torch::Tensor sinusoidal_positions(std::int64_t n, std::int64_t d) {
  torch::Tensor position = torch::arange(n, torch::kFloat).unsqueeze(1);
  torch::Tensor div = torch::exp(torch::arange(0, d, 2, torch::kFloat) * (-std::log(10000.0) / static_cast<double>(d)));
  torch::Tensor table = torch::zeros({n, d});
  table.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                   torch::sin(position * div));
  table.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                   torch::cos(position * div.narrow(0, 0, d / 2)));
  return table;
}
}  // namespace

TransformerEncoderImpl::TransformerEncoderImpl(const EncoderOptions& options, torch::nn::Embedding embedding)
    : embedding_(std::move(embedding)),
      embedding_scale_(options.scale_embeddings ? std::sqrt(static_cast<double>(options.d_model)) : 1.0) {
  auto layer = torch::nn::TransformerEncoderLayerOptions(options.d_model, options.n_heads)
                   .dim_feedforward(options.ffn_size)
                   .dropout(0.0)
                   .activation(torch::kReLU);
  layers_ = register_module("layers", torch::nn::TransformerEncoder(
                                          torch::nn::TransformerEncoderOptions(layer, options.n_layers)));
  positions_ = register_buffer("positions", sinusoidal_positions(options.max_positions, options.d_model));
}

torch::Tensor TransformerEncoderImpl::token_states(const torch::Tensor& tokens) {
  const std::int64_t time = tokens.size(1);
  torch::Tensor pad = tokens.eq(kPadId);                                       // [B, T]
  torch::Tensor x = embedding_(tokens) * embedding_scale_ + positions_.narrow(0, 0, time).unsqueeze(0);  // [B, T, E]
  return layers_->forward(x.transpose(0, 1), /*src_mask=*/torch::Tensor(), /*src_key_padding_mask=*/pad)
      .transpose(0, 1);
}

torch::Tensor TransformerEncoderImpl::forward(const torch::Tensor& tokens) {
  return masked_mean(token_states(tokens), tokens.ne(kPadId));
}

torch::Tensor masked_mean(const torch::Tensor& states, const torch::Tensor& keep) {
  torch::Tensor weights = keep.unsqueeze(-1).to(states.dtype());  // [B, T, 1]
  return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0);
}

torch::Tensor pad_batch(const std::vector<std::vector<std::int64_t>>& rows) {
  std::size_t longest = 1;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  torch::Tensor out = torch::full({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(longest)}, kPadId,
                                  torch::kLong);
  auto acc = out.accessor<std::int64_t, 2>();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < rows[i].size(); ++j) acc[i][j] = rows[i][j];
  }
  return out;
}

}  // namespace selffeed::dialogue::nn
