#include "adamax.h"

#include <cmath>

#include <torch/torch.h>

namespace selffeed::dialogue {

Adamax::Adamax(std::vector<torch::Tensor> parameters, double beta1, double beta2, double eps)
    : parameters_(std::move(parameters)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const torch::Tensor& p : parameters_) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_inf_.push_back(torch::zeros_like(p));
  }
}

void Adamax::zero_grad() {
  for (torch::Tensor& p : parameters_) {
    if (p.grad().defined()) p.grad().zero_();
  }
}

void Adamax::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double bias_correction = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const torch::Tensor& grad = parameters_[i].grad();
    if (!grad.defined()) continue;
    exp_avg_[i].mul_(beta1_).add_(grad, 1.0 - beta1_);
    exp_inf_[i] = torch::maximum(exp_inf_[i].mul_(beta2_), grad.abs().add_(eps_));
    parameters_[i].addcdiv_(exp_avg_[i], exp_inf_[i], -lr / bias_correction);
  }
}

void Adamax::save(torch::serialize::OutputArchive& archive) const {
  archive.write("steps", torch::tensor(steps_));
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    archive.write("exp_avg." + std::to_string(i), exp_avg_[i]);
    archive.write("exp_inf." + std::to_string(i), exp_inf_[i]);
  }
}

void Adamax::load(torch::serialize::InputArchive& archive) {
  torch::Tensor steps;
  archive.read("steps", steps);
  steps_ = steps.item<std::int64_t>();
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    torch::Tensor avg, inf;
    archive.read("exp_avg." + std::to_string(i), avg);
    archive.read("exp_inf." + std::to_string(i), inf);
    TORCH_CHECK(avg.sizes() == parameters_[i].sizes() && inf.sizes() == parameters_[i].sizes(),
                "optimizer state does not match parameter ", i);
    exp_avg_[i] = avg;
    exp_inf_[i] = inf;
  }
}

double invsqrt_learning_rate(double base, int warmup, std::int64_t step) {
  if (warmup <= 0) return base;
  if (step <= warmup) return base * static_cast<double>(std::max<std::int64_t>(step, 1)) / warmup;
  return base * std::sqrt(static_cast<double>(warmup) / static_cast<double>(step));
}

}  // namespace selffeed::dialogue
