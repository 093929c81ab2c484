#include "selffeed/common/logging.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "selffeed/common/log.h"
#include "testing.h"

namespace selffeed {
namespace {

namespace fs = std::filesystem;

TEST(LoggingTest, AnUnknownLevelIsRefused) {
  const Status s = init_logging({.level = "loud"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("loud"), std::string::npos);
}

TEST(LoggingTest, AFileThatCannotBeOpenedIsRefused) {
  testing::TempDir dir;
  std::ofstream(dir.str("not-a-directory")) << "x";
  const Status s = init_logging({.file = dir.str("not-a-directory/selffeed.log")});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(LoggingTest, WithoutALimitTheFileOnlyGrows) {
  testing::TempDir dir;
  ASSERT_OK(init_logging({.level = "info", .file = dir.str("serve.log")}));
  spdlog::logger* logger = SELFFEED_LOGGER("logging_test");
  for (int i = 0; i < 200; ++i) logger->info("line {} of a log that is never rotated", i);
  logger->flush();
  EXPECT_GT(fs::file_size(dir.path() / "serve.log"), 200u * 30u);
  EXPECT_FALSE(fs::exists(dir.path() / "serve.1.log"));
}

TEST(LoggingTest, ALimitedFileRotatesAndKeepsOnlyTheNewestOldOnes) {
  testing::TempDir dir;
  ASSERT_OK(init_logging({.level = "info", .file = dir.str("serve.log"), .max_file_bytes = 2048, .max_files = 2}));
  spdlog::logger* logger = SELFFEED_LOGGER("logging_test");
  for (int i = 0; i < 500; ++i) logger->info("line {} of a log that rotates every 2 KiB", i);
  logger->flush();
  for (const char* name : {"serve.log", "serve.1.log", "serve.2.log"}) {
    ASSERT_TRUE(fs::exists(dir.path() / name)) << name;
    EXPECT_LE(fs::file_size(dir.path() / name), 2048u) << name;
  }
  EXPECT_FALSE(fs::exists(dir.path() / "serve.3.log"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 3);
}

}  // namespace
}  // namespace selffeed
