#include "periodic_trainer.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "selffeed/common/log.h"

namespace selffeed::app {
namespace {

spdlog::logger* log() { return SELFFEED_LOGGER("trainer"); }

enum TrainerState { kIdle = 0, kTraining = 1, kGating = 2, kWaitingForTrial = 3 };

}  // namespace

PeriodicTrainer::PeriodicTrainer(PeriodicTrainerOptions options, ChatEngine& engine, ModelManager& models,
                                 metrics::Registry& metrics)
    : options_(std::move(options)),
      engine_(engine),
      models_(models),
      state_(metrics.gauge("selffeed_trainer_state",
                           "Periodic trainer: 0 idle, 1 training, 2 gating, 3 waiting for the trial to be decided.")),
      last_examples_(metrics.gauge("selffeed_trainer_last_run_new_examples",
                                   "Harvested examples that triggered the last retraining.")),
      last_run_time_(metrics.gauge("selffeed_trainer_last_run_timestamp_seconds", "When the last retraining ended.")),
      registry_(metrics),
      harvested_at_last_run_(harvested()),
      last_run_(std::chrono::steady_clock::now()) {
  for (const char* outcome : {"promoted", "trial", "refused", "failed"}) {
    registry_.counter("selffeed_trainer_runs_total", "Periodic retrainings, by outcome.", {{"outcome", outcome}});
  }
  thread_ = std::thread([this] { run(); });
}

PeriodicTrainer::~PeriodicTrainer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (const int pid = child_pid_.load(); pid > 0) ::kill(pid, SIGTERM);
  thread_.join();
}

std::uint64_t PeriodicTrainer::harvested() const {
  return engine_.harvested(ExampleKind::kHB) + engine_.harvested(ExampleKind::kFB);
}

bool PeriodicTrainer::due(std::uint64_t harvested_now, std::chrono::steady_clock::time_point now) const {
  if (models_.live_learned_from_deleted_users() && engine_.model_version() != retrained_to_forget_) return true;
  const std::uint64_t fresh = harvested_now - harvested_at_last_run_;
  if (options_.every_examples > 0 && fresh >= options_.every_examples) return true;
  return options_.every_minutes.count() > 0 && fresh > 0 && now - last_run_ >= options_.every_minutes;
}

void PeriodicTrainer::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
      if (stopping_) return;
    }
    // A new bundle would replace the one on trial before the users have judged it, and
    // trials would never end: the next retraining waits for the verdict.
    const bool trial_running = !engine_.trial().version.empty();
    state_.set(trial_running ? kWaitingForTrial : kIdle);
    const std::uint64_t now_harvested = harvested();
    if (!trial_running && due(now_harvested, std::chrono::steady_clock::now())) retrain_once(now_harvested);
  }
}

void PeriodicTrainer::retrain_once(std::uint64_t harvested_now) {
  ++runs_;
  const std::string version = "auto-" + std::to_string(unix_millis());
  const std::string run_dir = options_.runs_dir + "/" + version;
  const std::string log_file = run_dir + ".log";
  std::error_code ec;
  std::filesystem::create_directories(options_.runs_dir, ec);
  last_examples_.set(static_cast<double>(harvested_now - harvested_at_last_run_));
  log()->info("retraining {} on {} new harvested examples ({})", version, harvested_now - harvested_at_last_run_,
              run_dir);
  harvested_at_last_run_ = harvested_now;
  if (models_.live_learned_from_deleted_users()) {
    retrained_to_forget_ = engine_.model_version();
    log()->info("{} learned from the examples of a deleted user: retraining from a version that did not",
                retrained_to_forget_);
  }
  state_.set(kTraining);

  // The child runs at low priority with one BLAS thread; posix_spawn, because the server
  // has many threads and fork() would only allow async-signal-safe calls before exec.
  std::vector<std::string> args = {"nice", "-n", "10", "env", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
                                   options_.selffeed_binary, "--log-level", "info", "retrain", "--store",
                                   options_.store_dir, "--out", run_dir, "--personachat", options_.personachat,
                                   "--version", version, "--threads", "1"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);  // the server blocks SIGTERM for sigwait()
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, "nice", &files, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attributes);
  int status = -1;
  if (spawned == 0) {
    child_pid_ = pid;
    waitpid(pid, &status, 0);
    child_pid_ = 0;
  }
  last_run_ = std::chrono::steady_clock::now();
  last_run_time_.set(static_cast<double>(unix_millis()) / 1000.0);
  auto outcome = [&](const char* name) {
    registry_.counter("selffeed_trainer_runs_total", "Periodic retrainings, by outcome.", {{"outcome", name}}).inc();
    state_.set(kIdle);
  };
  if (spawned != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    log()->error("retraining {} failed (status {}); see {}", version, status, log_file);
    return outcome("failed");
  }
  state_.set(kGating);
  auto change = models_.consider(run_dir + "/bundle");
  if (!change.ok()) {
    log()->error("gating {} failed: {}", version, change.status().to_string());
    return outcome("failed");
  }
  outcome(change->promoted ? "promoted" : change->on_trial ? "trial" : "refused");
}

}  // namespace selffeed::app
