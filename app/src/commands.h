// Each file app/src/<area>_commands.cpp adds its subcommands to the `selffeed` CLI.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "selffeed/common/status.h"

namespace selffeed::app {

// A subcommand's action; its return value is the process exit code.
using Action = std::function<int()>;

// Prints "selffeed: <status>" to stderr; returns the exit code for a failed command (1).
int fail(const Status& status);

// Writes `text` to `path` when `path` is not empty (the --json outputs).
Status write_report(const std::string& path, const std::string& text);

// Registers `selffeed store stats|export|import`. The chosen action is stored in `action`.
void add_store_commands(CLI::App& app, Action& action);

// Registers `selffeed train` and `selffeed eval`.
void add_model_commands(CLI::App& app, Action& action);

// Registers `selffeed eval-satisfaction`, `train-satisfaction` and `lf-report`.
void add_satisfaction_commands(CLI::App& app, Action& action);

// Registers `selffeed serve` and `selffeed chat`.
void add_serve_commands(CLI::App& app, Action& action);

// Registers `selffeed models list|load|promote|rollback`.
void add_models_commands(CLI::App& app, Action& action);

// Registers `selffeed simulate`.
void add_simulate_commands(CLI::App& app, Action& action);

}  // namespace selffeed::app
