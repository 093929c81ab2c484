// Which bundle the server answers with: the promotion gate for new bundles, forced
// promotion and rollback, all recorded in the store's model registry, and the live swap
// (ChatEngine::swap_models: between batches, no connection notices but for the version).
// Thread-safe (one change at a time). Every change writes the registry before it changes
// what the engine serves, so a reader that asks the engine first and the registry second
// sees a finished change in both. Loading and gating a bundle takes seconds, so it runs
// on the admin thread or the periodic trainer's, never on an I/O thread.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "chat_engine.h"
#include "live_models.h"
#include "selffeed/common/metrics.h"
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
  // For the gauge selffeed_alert{alert="live_model_learned_from_deleted_users"}; none when null.
  metrics::Registry* metrics = nullptr;
};

// What ModelManager::forget_deleted_users did after a user's data was deleted.
struct Forgetting {
  bool live = false;          // the live version learned from them: retrain (the alert is up)
  // The live pool's replies that deleted users said, or the operator withdrew
  // (set_reply_withdrawn), never offered again from now on (ChatEngine::withdraw_replies).
  std::size_t withdrawn_replies = 0;
  std::string trial_ended;    // the version whose trial it ended, or empty
  std::string shadow_ended;   // the version whose shadow it ended, or empty
};

// What ModelManager::set_reply_withdrawn did.
struct ReplyWithdrawal {
  bool changed = false;       // false: it was withdrawn (or given back) already
  bool in_live_pool = false;  // the live version's pool has the reply (a persona sentence is not in it)
  // The live pool's replies never offered from now on: the deleted users' and the withdrawn.
  std::size_t live_replies_withdrawn = 0;
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
  // Makes a registered version live without the gate. A version that learned from a
  // deleted user's examples only with `force` (kFailedPrecondition otherwise).
  Result<ModelChange> promote(const std::string& version, bool force = false,
                              const std::string& reason = "promoted by an operator");
  // Back to the most recently retired version that did not learn from a deleted user's
  // examples.
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

  // Consent-aware forgetting, after Store::delete_user. The versions that learned from a
  // deleted user's examples (learned_from_deleted_users) carry them in their weights and
  // say their words from their candidate pools: the trial or shadow of such a version
  // ends; such a live version stays (the server must answer), but never offers the
  // deleted users' replies its pool holds, and raises the alert and
  // live_learned_from_deleted_users() until a clean model replaces it. Such versions are
  // not promoted (but with force), rolled back to, gated, tried or shadowed.
  Result<Forgetting> forget_deleted_users();
  // Withdraws a reply from every version's candidate pool for good (true: kept in the
  // store, applied at every model change and restart, the live version from its next
  // batch), as a deleted user's replies are; false gives it back. For the operator, after
  // users reported it (disliked_replies).
  Result<ReplyWithdrawal> set_reply_withdrawn(const std::string& text, bool withdrawn);
  bool live_learned_from_deleted_users() const { return live_tainted_since_ms_.load() != 0; }
  // Since when (Unix ms) the live version is known to have; 0 when it has not.
  std::int64_t live_tainted_since_ms() const { return live_tainted_since_ms_.load(); }

 private:
  Result<ModelChange> promote_locked(const std::string& version, bool force, const std::string& reason);
  // The versions that learned from deleted users' examples, among the registry's and
  // `unregistered` (a bundle being loaded) when given.
  Result<std::set<std::string>> tainted(const std::optional<ModelRecord>& unregistered = std::nullopt);
  // kFailedPrecondition when the bundle `models` learned from deleted users' examples.
  Status refuse_if_tainted(const LiveModels& models, const std::string& path, const char* what);
  // Sets live_tainted_since_ms_ and the alert's gauge from the registry.
  Status refresh_live_tainted();
  // Sets the pool replies `models` never offers (deleted users', the operator's withdrawn)
  // before or while it serves; returns how many.
  Result<std::size_t> withdraw_from(const LiveModels& models);
  // The same for the live models and those on trial and in shadow; returns the live one's.
  Result<std::size_t> withdraw_from_serving();
  // The gate's data for judging the candidate at `candidate_dir` against the live model.
  Result<trainer::GateData> gate_data(const std::string& candidate_dir);
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
  std::atomic<std::int64_t> live_tainted_since_ms_{0};
  std::string alerted_version_;  // the subject of the alert's gauge at 1, or empty (live_tainted_since_ms_ 0)
  std::mutex mutex_;
};

}  // namespace selffeed::app
