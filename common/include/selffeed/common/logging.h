// Logging setup, called once by the application. Libraries never create sinks or set
// levels: they fetch their named logger through <selffeed/common/log.h> (in .cpp files
// only, since it pulls in spdlog).
//
//   selffeed::init_logging({.level = "info", .file = "selffeed.log"});
#pragma once

#include <cstddef>
#include <string>

#include "selffeed/common/status.h"

namespace selffeed {

struct LogOptions {
  // One of trace, debug, info, warn, error, off. Default: info.
  std::string level = "info";
  // Also append to this file when non-empty. Default: console only.
  std::string file;
  // When the file would grow past this many bytes it becomes NAME.1.EXT (an older NAME.1.EXT
  // becomes NAME.2.EXT, and so on; beyond `max_files` the oldest is deleted) and a new file
  // is started. 0: the file only grows, to be rotated from outside (logrotate's
  // copytruncate).
  std::size_t max_file_bytes = 0;
  std::size_t max_files = 5;
};

// Creates the shared sinks and one named logger per module ("store", "dialogue", ...).
// Returns kInvalidArgument for an unknown level or a file that cannot be opened.
Status init_logging(const LogOptions& options);

}  // namespace selffeed
