// selffeed::dialogue: the DIALOGUE/FEEDBACK model of the self-feeding chatbot and the
// LibTorch runtime it runs on.
//
//   selffeed::dialogue::configure_threads({.intra_op = 1});
//   std::string blas = selffeed::dialogue::loaded_blas_library();  // ".../openblas-pthread/..."
#pragma once

#include <string>

namespace selffeed::dialogue {

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

}  // namespace selffeed::dialogue
