// What the store-reading benchmarks (harvest_read_bench, review_queue_bench) share: exit on
// an error, and the median time of a read.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <utility>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::bench {

inline void check(const Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.to_string().c_str());
    std::exit(1);
  }
}

template <class T>
T check(Result<T> result) {
  check(result.status());
  return std::move(result).value();
}

// The median of 3 runs of `read`, in seconds.
inline double median_seconds(const std::function<void()>& read) {
  std::vector<double> seconds;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    read();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[1];
}

}  // namespace selffeed::bench
