// Logging setup, called once by the application. Libraries never create sinks or set
// levels: they fetch their named logger through <selffeed/common/log.h> (in .cpp files
// only, since it pulls in spdlog).
//
//   selffeed::init_logging({.level = "info", .file = "selffeed.log"});
#pragma once

#include <string>

#include "selffeed/common/status.h"

namespace selffeed {

struct LogOptions {
  // One of trace, debug, info, warn, error, off. Default: info.
  std::string level = "info";
  // Also append to this file when non-empty. Default: console only.
  std::string file;
};

// Creates the shared sinks and one named logger per module ("store", "dialogue", ...).
// Returns kInvalidArgument for an unknown level or a file that cannot be opened.
Status init_logging(const LogOptions& options);

}  // namespace selffeed
