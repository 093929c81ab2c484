// Which bundle the server answers with: the promotion gate for new bundles, forced
// promotion and rollback, all recorded in the store's model registry, and the live swap
// (ChatEngine::swap_models: between batches, no connection notices but for the version).
// Thread-safe (one change at a time). Every change writes the registry before it changes
// what the engine serves, so a reader that asks the engine first and the registry second
// sees a finished change in both. Loading and gating a bundle takes seconds, so it runs
// on the admin thread or the periodic trainer's, never on an I/O thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat_engine.h"
#include "live_models.h"
#include "selffeed/store/store.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {

struct ModelManagerOptions {
  ScorerKind scorer = ScorerKind::kAuto;
  // PersonaChat valid (ParlAI text with candidates); without it the gate cannot run.
  std::string gate_file;
  std::size_t gate_examples = 1000;  // the first N of gate_file (0: all)
  double epsilon = 0.01;             // allowed drop of PersonaChat hits@1 and of the ST AUC
  // Rated ConvAI2 files: their test split scores the bundles' satisfaction estimators.
  std::vector<std::string> gate_satisfaction_files;
  // A bundle the gate passes goes on trial for this share of the users first, and lives
  // only once the users have judged it (judge_trial); 0: it goes live at once.
  double trial_share = 0;
};

struct ModelChange {
  std::string version;
  bool promoted = false;
  std::string reason;
  std::optional<trainer::GateScores> candidate_scores;
  std::optional<trainer::GateScores> live_scores;
  std::string live_version;  // after the change
  bool on_trial = false;     // `version` is on trial now
};

// {"personachat_hits@1", "feedback_hits@1", "satisfaction_auc"} (null where not measured),
// or null when the scores were not computed.
nlohmann::json gate_scores_json(const std::optional<trainer::GateScores>& scores);

class ModelManager {
 public:
  ModelManager(ModelManagerOptions options, store::Store& store, ChatEngine& engine, std::shared_ptr<LiveModels> live);

  // Puts the served bundle into the registry as live when it is not there yet (the
  // learning view and rollback read the registry), and resumes the trial the registry
  // holds from before a restart (one that no longer loads goes back to "candidate") and
  // the shadow the store keeps.
  Status register_live();

  // Gates the bundle at `bundle_dir` against the live model; when it passes, swaps it in
  // or, with a trial share, puts it on trial. The decision and its numbers go to the
  // registry either way.
  Result<ModelChange> consider(const std::string& bundle_dir);
  // Makes a registered version live without the gate.
  Result<ModelChange> promote(const std::string& version, const std::string& reason = "promoted by an operator");
  // Back to the most recently retired version.
  Result<ModelChange> rollback();
  // Serves the bundle at `bundle_dir` to `share` of the users beside the live model
  // (ChatEngine::start_trial), without the gate: in a trial the users judge it (`selffeed
  // models report`). Registered as "trial" until it is promoted or the trial ends;
  // replaces a trial in progress.
  Result<ModelChange> trial(const std::string& bundle_dir, double share);
  // Everyone back on the live model; the version on trial goes back to "candidate".
  Result<ModelChange> end_trial();
  // Lets the bundle at `bundle_dir` also answer `share` (0 < share <= 1) of the live
  // model's conversations, unseen (ChatEngine::start_shadow), without the gate; `selffeed
  // models report` compares its answers with the live ones on the same turns. What users
  // get does not change, so the registry does not either; the store keeps the bundle and
  // share (a setting), and a restart resumes it. It ends with end_shadow or when its
  // version goes live. Replaces a shadow in progress. The version now in shadow.
  Result<std::string> shadow(const std::string& bundle_dir, double share);
  // The version that was in shadow; kNotFound when none is.
  Result<std::string> end_shadow();
  // Once both the trial and the live model have answered `min_conversations` conversations
  // since the trial began: the version on trial goes live, unless its users asked, complained
  // or gave thumbs down more often than the live model's (worse_with_users), in which case
  // the trial ends and the version is rejected. The verdict and the numbers go to the
  // registry. Nullopt: no trial, or not enough conversations yet.
  Result<std::optional<ModelChange>> judge_trial(std::uint64_t min_conversations);

 private:
  Result<ModelChange> promote_locked(const std::string& version, const std::string& reason);
  Result<trainer::GateData> gate_data();
  Result<trainer::GateScores> scores_of(const std::string& bundle_dir, const trainer::GateData& data);
  Status swap_in(std::shared_ptr<LiveModels> models, ModelRecord record);
  Status resume_trial();
  // Registers `record` as on trial for `share` of the users and starts the trial.
  Status start_trial(std::shared_ptr<LiveModels> models, ModelRecord record, double share);
  // The bundle at `path`, to run in shadow: refused when it is the live version.
  Result<std::shared_ptr<LiveModels>> load_shadow(const std::string& path);
  // Starts the shadow the store keeps from before a restart; one that no longer loads is
  // dropped, with a warning.
  Status resume_shadow();
  // The registry's "trial" records other than `except` become candidates again.
  Status retire_trials(const std::string& except);

  const ModelManagerOptions options_;
  store::Store& store_;
  ChatEngine& engine_;
  std::shared_ptr<LiveModels> live_;
  std::optional<std::vector<trainer::RankingExample>> personachat_;  // loaded on first use
  std::optional<trainer::SatisfactionSet> satisfaction_test_;        // loaded on first use
  std::map<std::string, trainer::GateScores> scores_by_bundle_;      // bundles are immutable
  std::mutex mutex_;
};

}  // namespace selffeed::app
