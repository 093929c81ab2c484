#include <link.h>

#include <climits>
#include <cstdlib>
#include <string>

#include <ATen/Parallel.h>

#include "selffeed/dialogue/dialogue.h"

namespace selffeed::dialogue {

void configure_threads(const ThreadOptions& options) {
  at::set_num_threads(options.intra_op > 0 ? options.intra_op : 1);
}

std::string loaded_blas_library() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
        if (name.find("libblas.so") == std::string::npos && name.find("libopenblas") == std::string::npos) return 0;
        char resolved[PATH_MAX];
        *static_cast<std::string*>(data) = realpath(name.c_str(), resolved) != nullptr ? resolved : name;
        return 1;
      },
      &found);
  return found;
}

}  // namespace selffeed::dialogue
