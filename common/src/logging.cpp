#include "selffeed/common/logging.h"

#include <mutex>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "selffeed/common/log.h"

namespace selffeed {
namespace {

struct Registry {
  std::mutex mutex;  // Guards sinks and level.
  std::vector<spdlog::sink_ptr> sinks;
  spdlog::level::level_enum level = spdlog::level::info;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Status init_logging(const LogOptions& options) {
  spdlog::level::level_enum level = spdlog::level::from_str(options.level);
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (level == spdlog::level::off && options.level != "off") {
    return invalid_argument_error("unknown log level '" + options.level +
                                  "' (use trace, debug, info, warn, error or off)");
  }
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!options.file.empty()) {
    try {
      if (options.max_file_bytes > 0) {
        sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(options.file, options.max_file_bytes,
                                                                              options.max_files));
      } else {
        sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file));
      }
    } catch (const spdlog::spdlog_ex& e) {
      return invalid_argument_error("cannot open log file '" + options.file + "': " + e.what());
    }
  }
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.sinks = std::move(sinks);
  r.level = level;
  // Re-point loggers created before init at the new sinks.
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
    logger->sinks() = r.sinks;
    logger->set_level(level);
  });
  return ok_status();
}

std::shared_ptr<spdlog::logger> module_logger(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::string key(name);
  if (auto existing = spdlog::get(key)) return existing;
  if (r.sinks.empty()) r.sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>(key, r.sinks.begin(), r.sinks.end());
  logger->set_level(r.level);
  logger->flush_on(spdlog::level::warn);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace selffeed
