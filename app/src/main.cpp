// The `selffeed` executable: flag parsing and wiring. The only place that reads flags and
// the environment.
#include <cstdio>

#include "commands.h"
#include "selffeed/common/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"selffeed: a self-feeding chatbot server that keeps learning from its users"};
  app.require_subcommand(1);
  selffeed::LogOptions log_options;
  app.add_option("--log-level", log_options.level, "trace, debug, info, warn, error or off")
      ->envname("SELFFEED_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-file", log_options.file, "also append logs to this file")->envname("SELFFEED_LOG_FILE");
  std::size_t log_rotate_mib = 0;
  app.add_option("--log-rotate-mb", log_rotate_mib,
                 "start a new log file when it reaches this many MiB (serve.log becomes serve.1.log), keeping "
                 "--log-keep old ones; 0: never (rotate from outside with logrotate's copytruncate)")
      ->envname("SELFFEED_LOG_ROTATE_MB")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--log-keep", log_options.max_files, "old log files kept by --log-rotate-mb")
      ->envname("SELFFEED_LOG_KEEP")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->capture_default_str();
  app.set_version_flag("--version", "selffeed 0.1.0");

  selffeed::app::Action action;
  selffeed::app::add_store_commands(app, action);
  selffeed::app::add_model_commands(app, action);
  selffeed::app::add_satisfaction_commands(app, action);
  selffeed::app::add_serve_commands(app, action);
  selffeed::app::add_models_commands(app, action);
  selffeed::app::add_simulate_commands(app, action);

  CLI11_PARSE(app, argc, argv);
  log_options.max_file_bytes = log_rotate_mib << 20;
  if (selffeed::Status s = selffeed::init_logging(log_options); !s.ok()) {
    std::fprintf(stderr, "selffeed: %s\n", s.to_string().c_str());
    return 2;
  }
  return action ? action() : 2;
}
