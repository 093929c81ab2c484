// For .cpp files only (it includes spdlog): the named logger of a module.
//
//   SELFFEED_LOGGER("store")->info("opened {} in {} ms", path, ms);
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace selffeed {

// The logger called `name`, sharing the sinks set up by init_logging(); a console logger
// when init_logging() was never called (tests, tools). Never null; thread-safe.
std::shared_ptr<spdlog::logger> module_logger(std::string_view name);

}  // namespace selffeed

// Caches the lookup in a function-local static.
#define SELFFEED_LOGGER(name)                                                  \
  ([]() -> spdlog::logger* {                                                   \
    static const std::shared_ptr<spdlog::logger> logger_ = ::selffeed::module_logger(name); \
    return logger_.get();                                                      \
  }())
