// Shared test helpers: Status assertions and a per-test temporary directory.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "selffeed/common/status.h"

namespace selffeed::testing {

inline const Status& status_of(const Status& s) { return s; }
template <class T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& child = "") const {
    return child.empty() ? path_.string() : (path_ / child).string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace selffeed::testing

// Work on both Status and Result<T>.
#define ASSERT_OK(expr) ASSERT_TRUE((expr).ok()) << ::selffeed::testing::status_of(expr).to_string()
#define EXPECT_OK(expr) EXPECT_TRUE((expr).ok()) << ::selffeed::testing::status_of(expr).to_string()
