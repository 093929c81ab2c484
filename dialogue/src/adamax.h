// Adamax (Kingma & Ba 2015, section 7.1), which LibTorch 1.13's C++ API lacks. The
// self-feeding paper trains with it (lr 0.0025, warm-up then inverse square root).
#pragma once

#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

namespace selffeed::dialogue {

class Adamax {
 public:
  explicit Adamax(std::vector<torch::Tensor> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);

  void zero_grad();
  // One update with learning rate `lr`; advances the step count.
  void step(double lr);
  std::int64_t steps() const { return steps_; }

  void save(torch::serialize::OutputArchive& archive) const;
  // Throws c10::Error on a malformed archive (the caller turns it into a Status).
  void load(torch::serialize::InputArchive& archive);

 private:
  std::vector<torch::Tensor> parameters_;
  std::vector<torch::Tensor> exp_avg_;
  std::vector<torch::Tensor> exp_inf_;
  double beta1_, beta2_, eps_;
  std::int64_t steps_ = 0;
};

// The paper's schedule: linear warm-up over `warmup` steps, then lr * sqrt(warmup / step).
double invsqrt_learning_rate(double base, int warmup, std::int64_t step);

}  // namespace selffeed::dialogue
