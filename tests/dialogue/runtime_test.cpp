#include "selffeed/dialogue/dialogue.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace selffeed::dialogue {
namespace {

// Reference BLAS makes LibTorch ~30x slower; scripts/install-deps.sh must have switched
// libblas.so.3 to OpenBLAS, and this binary must really run on it.
TEST(RuntimeTest, LibTorchRunsOnOpenBlas) {
  configure_threads({.intra_op = 1});
  torch::Tensor a = torch::ones({64, 64});
  torch::Tensor b = torch::mm(a, a);
  EXPECT_FLOAT_EQ(b[0][0].item<float>(), 64.0f);
  std::string blas = loaded_blas_library();
  EXPECT_NE(blas.find("openblas"), std::string::npos) << "LibTorch is using '" << blas << "'";
  EXPECT_EQ(at::get_num_threads(), 1);
}

}  // namespace
}  // namespace selffeed::dialogue
