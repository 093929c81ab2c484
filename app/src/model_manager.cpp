#include "model_manager.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "disliked_replies.h"
#include "drift_monitor.h"
#include "model_report.h"
#include "selffeed/common/digest.h"
#include "selffeed/common/log.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

spdlog::logger* log() { return SELFFEED_LOGGER("models"); }

// The store setting that keeps the shadow across restarts: {"bundle": DIR, "share": S},
// or empty when there is none.
constexpr const char* kShadowSetting = "shadow";

constexpr const char* kForgettingAlert = "live_model_learned_from_deleted_users";

// The candidate ids of `model`'s pool replies that a deleted user said, by their digests
// in the store's tombstones (a reply anyone else said in the training files goes too), and
// of those the operator withdrew (set_reply_withdrawn).
Result<std::vector<std::int64_t>> withdrawn_replies_in(const store::Store& store,
                                                       const dialogue::DialogueModel& model) {
  SELFFEED_ASSIGN_OR_RETURN(const store::DeletedExamples deleted, store.deleted_examples());
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> withdrawn, withdrawn_reply_digests(store));
  std::vector<std::int64_t> ids;
  if (deleted.reply_sha256.empty() && withdrawn.empty()) return ids;
  const std::vector<std::string>& pool = model.candidate_pool();
  for (std::size_t id = 0; id < pool.size(); ++id) {
    const std::string digest = sha256_hex(pool[id]);
    if (deleted.reply_sha256.contains(digest) || withdrawn.contains(digest)) {
      ids.push_back(static_cast<std::int64_t>(id));
    }
  }
  return ids;
}

Status learned_from_deleted_error(const std::string& version, std::string_view refused) {
  return failed_precondition_error("version " + version +
                                   " learned from the examples of a deleted user (or was fine-tuned from a version "
                                   "that did): it is not " + std::string(refused) +
                                   "; retrain without them (`selffeed retrain` starts from a version that did not)");
}

}  // namespace

json gate_scores_json(const std::optional<trainer::GateScores>& s) {
  if (!s) return nullptr;
  auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {{"personachat_hits@1", s->personachat_hits_at_1},
          {"feedback_hits@1", optional(s->feedback_hits_at_1)},
          {"satisfaction_auc", optional(s->satisfaction_auc)}};
}

ModelManager::ModelManager(ModelManagerOptions options, store::Store& store, ChatEngine& engine,
                           std::shared_ptr<LiveModels> live)
    : options_(std::move(options)), store_(store), engine_(engine), live_(std::move(live)) {}

Result<trainer::GateData> ModelManager::gate_data(const std::string& candidate_dir) {
  if (options_.gate_file.empty()) {
    return failed_precondition_error("the promotion gate needs PersonaChat valid: start the server with --gate-valid FILE");
  }
  if (!personachat_) {
    SELFFEED_ASSIGN_OR_RETURN(auto examples, trainer::load_parlai_text(options_.gate_file, {}));
    if (options_.gate_examples > 0 && examples.size() > options_.gate_examples) examples.resize(options_.gate_examples);
    personachat_ = std::move(examples);
  }
  if (!satisfaction_test_) {
    trainer::SatisfactionSet test;  // stays empty without files: no ST score
    if (!options_.gate_satisfaction_files.empty()) {
      SELFFEED_ASSIGN_OR_RETURN(auto data, trainer::load_satisfaction_data(options_.gate_satisfaction_files));
      test = trainer::satisfaction_splits(data.labelled).test;
    }
    satisfaction_test_ = std::move(test);
  }
  trainer::GateData data;
  data.personachat = *personachat_;
  data.satisfaction = *satisfaction_test_;
  // The held-out feedback of the users the candidate's retraining did not learn from (its
  // trust.json) is left out too: a troll's lines are no test of either model.
  std::set<std::string> distrusted;
  if (auto trust = read_trust_report(candidate_dir); trust.ok()) {
    for (const json& t : (*trust)["teachers"]) {
      if (!t["trusted"].get<bool>()) distrusted.insert(t["teacher"].get<std::string>());
    }
  } else if (trust.status().code() != StatusCode::kNotFound) {
    SELFFEED_LOGGER("serve")->warn("the gate scores every held-out feedback: {}", trust.status().to_string());
  }
  SELFFEED_ASSIGN_OR_RETURN(data.feedback, trainer::feedback_gate_set(store_, std::move(distrusted)));
  return data;
}

Status ModelManager::register_live() {
  std::lock_guard lock(mutex_);
  SELFFEED_RETURN_IF_ERROR(resume_shadow());
  auto existing = store_.get_model(live_->version);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) return existing.status();
  SELFFEED_RETURN_IF_ERROR(resume_trial());
  if (!existing.ok()) {
    const dialogue::BundleInfo& info = live_->dialogue->info();
    const std::int64_t now = unix_millis();
    SELFFEED_RETURN_IF_ERROR(store_.put_model({live_->version, registry_path(live_->bundle_dir), ModelStatus::kLive,
                                               info.metrics_json, info.lineage_json, now, now}));
  }
  SELFFEED_RETURN_IF_ERROR(withdraw_from(*live_).status());
  return refresh_live_tainted();
}

Result<std::set<std::string>> ModelManager::tainted(const std::optional<ModelRecord>& unregistered) {
  SELFFEED_ASSIGN_OR_RETURN(std::vector<ModelRecord> records, store_.list_models());
  if (unregistered) {
    std::erase_if(records, [&](const ModelRecord& r) { return r.version == unregistered->version; });
    records.push_back(*unregistered);
  }
  return learned_from_deleted_users(store_, records);
}

Status ModelManager::refuse_if_tainted(const LiveModels& models, const std::string& path, const char* what) {
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> versions,
                            tainted(ModelRecord{.version = models.version,
                                                .path = path,
                                                .lineage_json = models.dialogue->info().lineage_json}));
  return versions.contains(models.version) ? learned_from_deleted_error(models.version, what) : ok_status();
}

Status ModelManager::refresh_live_tainted() {
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> versions, tainted());
  const bool now = versions.contains(live_->version);
  if (alerted_version_ == (now ? live_->version : "")) return ok_status();  // nothing changed
  live_tainted_since_ms_ = now ? unix_millis() : 0;
  auto gauge = [&](const std::string& version) -> metrics::Gauge* {
    if (options_.metrics == nullptr) return nullptr;
    return &options_.metrics->gauge("selffeed_alert", kAlertGaugeHelp, {{"alert", kForgettingAlert}, {"subject", version}});
  };
  if (!alerted_version_.empty()) {
    if (metrics::Gauge* g = gauge(alerted_version_)) g->set(0);
    log()->info("alert {} {} cleared: {} is live", kForgettingAlert, alerted_version_, live_->version);
    alerted_version_.clear();
  }
  if (now) {
    alerted_version_ = live_->version;
    if (metrics::Gauge* g = gauge(alerted_version_)) g->set(1);
    if (options_.metrics != nullptr) {
      options_.metrics->counter("selffeed_alerts_total", "Alerts fired, by alert.", {{"alert", kForgettingAlert}}).inc();
    }
    log()->warn("alert {} {}: the live model learned from the examples of a deleted user; retrain without them",
                kForgettingAlert, alerted_version_);
  }
  return ok_status();
}

Result<std::size_t> ModelManager::withdraw_from(const LiveModels& models) {
  SELFFEED_ASSIGN_OR_RETURN(std::vector<std::int64_t> ids, withdrawn_replies_in(store_, *models.dialogue));
  const std::size_t count = ids.size();
  engine_.withdraw_replies(models.version, std::move(ids));
  return count;
}

Result<std::size_t> ModelManager::withdraw_from_serving() {
  std::size_t live = 0;
  for (const std::shared_ptr<LiveModels>& models : engine_.serving_models()) {
    SELFFEED_ASSIGN_OR_RETURN(const std::size_t withdrawn, withdraw_from(*models));
    if (models->version == live_->version) live = withdrawn;
  }
  return live;
}

Result<ReplyWithdrawal> ModelManager::set_reply_withdrawn(const std::string& text, bool withdrawn) {
  std::lock_guard lock(mutex_);
  ReplyWithdrawal out;
  SELFFEED_ASSIGN_OR_RETURN(out.changed, app::set_reply_withdrawn(store_, text, withdrawn));
  const std::vector<std::string>& pool = live_->dialogue->candidate_pool();
  out.in_live_pool = std::find(pool.begin(), pool.end(), text) != pool.end();
  SELFFEED_ASSIGN_OR_RETURN(out.live_replies_withdrawn, withdraw_from_serving());
  log()->info("admin: reply {} ({} live pool replies withdrawn now)", withdrawn ? "withdrawn" : "given back",
              out.live_replies_withdrawn);
  return out;
}

Result<Forgetting> ModelManager::forget_deleted_users() {
  std::lock_guard lock(mutex_);
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> versions, tainted());
  Forgetting forgetting;
  if (const std::string trial = engine_.trial().version; versions.contains(trial)) {
    SELFFEED_RETURN_IF_ERROR(retire_trials(""));
    engine_.end_trial();
    forgetting.trial_ended = trial;
    log()->info("the trial of {} ended: it learned from the examples of a deleted user", trial);
  }
  if (const std::string shadow = engine_.shadow().version; versions.contains(shadow)) {
    SELFFEED_RETURN_IF_ERROR(store_.set_setting(kShadowSetting, ""));
    engine_.end_shadow();
    forgetting.shadow_ended = shadow;
    log()->info("the shadow of {} ended: it learned from the examples of a deleted user", shadow);
  }
  SELFFEED_ASSIGN_OR_RETURN(forgetting.withdrawn_replies, withdraw_from_serving());
  SELFFEED_RETURN_IF_ERROR(refresh_live_tainted());
  forgetting.live = live_learned_from_deleted_users();
  return forgetting;
}

Status ModelManager::resume_trial() {
  SELFFEED_ASSIGN_OR_RETURN(auto records, store_.list_models());
  const ModelRecord* newest = nullptr;
  for (const ModelRecord& r : records) {
    if (r.status == ModelStatus::kTrial && (newest == nullptr || r.updated_ms >= newest->updated_ms)) newest = &r;
  }
  if (newest == nullptr) return ok_status();
  ModelRecord record = *newest;
  const json metrics = json::parse(record.metrics_json, nullptr, false);
  const double share = metrics.is_object() && metrics.contains("trial") ? metrics["trial"].value("share", 0.0) : 0.0;
  auto models = load_live_models(record.path, options_.scorer);
  Status refused = models.ok() ? refuse_if_tainted(**models, record.path, "tried on users") : models.status();
  if (record.version == live_->version || !refused.ok() || share <= 0 || share >= 1) {
    log()->warn("the trial of {} is not resumed: {}", record.version,
                refused.ok() ? "it is live or has no share" : refused.to_string());
    return retire_trials("");
  }
  SELFFEED_RETURN_IF_ERROR(withdraw_from(**models).status());
  engine_.start_trial(std::move(*models), share);
  return retire_trials(record.version);
}

Status ModelManager::retire_trials(const std::string& except) {
  SELFFEED_ASSIGN_OR_RETURN(auto records, store_.list_models());
  for (ModelRecord& r : records) {
    if (r.status != ModelStatus::kTrial || r.version == except) continue;
    r.status = ModelStatus::kCandidate;
    r.updated_ms = unix_millis();
    SELFFEED_RETURN_IF_ERROR(store_.put_model(r));
  }
  return ok_status();
}

Result<trainer::GateScores> ModelManager::scores_of(const std::string& bundle_dir, const trainer::GateData& data) {
  // The FB slice grows as users give feedback, so only PersonaChat scores are cached.
  auto cached = scores_by_bundle_.find(bundle_dir);
  if (cached != scores_by_bundle_.end() && data.feedback.empty()) return cached->second;
  // A private copy of the model: the inference worker keeps using its own.
  SELFFEED_ASSIGN_OR_RETURN(auto model, dialogue::DialogueModel::load(bundle_dir));
  auto estimator = satisfaction::SatisfactionModel::load(bundle_dir, model->shared_tokenizer());
  if (!estimator.ok() && estimator.status().code() != StatusCode::kNotFound) return estimator.status();
  SELFFEED_ASSIGN_OR_RETURN(trainer::GateScores scores,
                            trainer::gate_scores(*model, estimator.ok() ? estimator->get() : nullptr, data));
  scores_by_bundle_[bundle_dir] = scores;
  return scores;
}

Status ModelManager::swap_in(std::shared_ptr<LiveModels> models, ModelRecord record) {
  // Read before the registry changes: a failure here changes nothing.
  SELFFEED_ASSIGN_OR_RETURN(std::vector<std::int64_t> withdrawn, withdrawn_replies_in(store_, *models->dialogue));
  const std::int64_t now = unix_millis();
  // The old live record is retired first, so a crash in between leaves no two live ones.
  SELFFEED_ASSIGN_OR_RETURN(auto records, store_.list_models());
  for (ModelRecord& r : records) {
    if (r.status == ModelStatus::kLive && r.version != record.version) {
      r.status = ModelStatus::kRetired;
      r.updated_ms = now;
      SELFFEED_RETURN_IF_ERROR(store_.put_model(r));
    }
  }
  record.status = ModelStatus::kLive;
  record.updated_ms = now;
  SELFFEED_RETURN_IF_ERROR(store_.put_model(record));
  // The engine ends the shadow of a version that goes live: so does the saved setting.
  if (engine_.shadow().version == record.version) SELFFEED_RETURN_IF_ERROR(store_.set_setting(kShadowSetting, ""));
  engine_.withdraw_replies(models->version, std::move(withdrawn));
  engine_.swap_models(models);
  live_ = std::move(models);
  return refresh_live_tainted();
}

Result<ModelChange> ModelManager::consider(const std::string& bundle_dir) {
  std::lock_guard lock(mutex_);
  const std::string path = registry_path(bundle_dir);
  SELFFEED_ASSIGN_OR_RETURN(auto candidate, load_live_models(path, options_.scorer));
  ModelChange change;
  change.version = candidate->version;
  if (candidate->version == live_->version) {
    return already_exists_error("version " + candidate->version + " is already live");
  }
  SELFFEED_RETURN_IF_ERROR(refuse_if_tainted(*candidate, path, "gated"));
  // A live version that learned from deleted users' examples is no bar for the model that
  // forgets them: the version its retraining restarted from is.
  std::string against = live_->version;
  std::string against_dir = live_->bundle_dir;
  if (live_learned_from_deleted_users()) {
    const json lineage = json::parse(candidate->dialogue->info().lineage_json, nullptr, false);
    const json restarted = lineage.is_object() ? lineage.value("restarted_from", json()) : json();
    if (restarted.is_object() && restarted.value("version", json()).is_string()) {
      auto record = store_.get_model(restarted["version"].get<std::string>());
      if (record.ok()) {
        against = record->version;
        against_dir = record->path;
      }
    }
  }
  SELFFEED_ASSIGN_OR_RETURN(trainer::GateData data, gate_data(path));  // one store scan for both
  SELFFEED_ASSIGN_OR_RETURN(change.live_scores, scores_of(against_dir, data));
  SELFFEED_ASSIGN_OR_RETURN(change.candidate_scores, scores_of(path, data));
  const trainer::GateDecision decision = trainer::gate_decision(*change.live_scores, *change.candidate_scores,
                                                                options_.epsilon);
  change.promoted = decision.promote;
  change.reason = decision.reason;
  if (against != live_->version) {
    change.reason += " (against " + against + ", which it was retrained from: the live " + live_->version +
                     " learned from the examples of a deleted user)";
  }

  json metrics = json::parse(candidate->dialogue->info().metrics_json, nullptr, false);
  if (!metrics.is_object()) metrics = json::object();
  if (change.candidate_scores) {
    metrics["personachat_hits@1"] = change.candidate_scores->personachat_hits_at_1;
    if (change.candidate_scores->feedback_hits_at_1) metrics["feedback_hits@1"] = *change.candidate_scores->feedback_hits_at_1;
    if (change.candidate_scores->satisfaction_auc) metrics["satisfaction_auc"] = *change.candidate_scores->satisfaction_auc;
  }
  metrics["gate"] = {{"promoted", change.promoted},
                     {"reason", change.reason},
                     {"against", against},
                     {"live", gate_scores_json(change.live_scores)},
                     {"candidate", gate_scores_json(change.candidate_scores)},
                     {"epsilon", options_.epsilon},
                     {"decided_ms", unix_millis()}};
  ModelStatus refused = ModelStatus::kRejected;
  if (candidate->version == engine_.trial().version) {
    // Refused by the gate, it stays on trial: users are judging it; promoted, the trial ends.
    auto on_trial = store_.get_model(candidate->version);
    const json before = on_trial.ok() ? json::parse(on_trial->metrics_json, nullptr, false) : json();
    if (before.is_object() && before.contains("trial")) metrics["trial"] = before["trial"];
    refused = ModelStatus::kTrial;
  }
  const std::int64_t now = unix_millis();
  ModelRecord record{candidate->version, path, refused, metrics.dump(), candidate->dialogue->info().lineage_json,
                     now, now};
  log()->info("gate: {} {} ({})", candidate->version, change.promoted ? "passed" : "refused", change.reason);
  // Forgetting: the live model must go whatever the gate says (no trial keeps it for most
  // users meanwhile); refused, the model it restarted from is the best one without them.
  const bool forgetting = against != live_->version;
  if (change.promoted && options_.trial_share > 0 && !forgetting) {
    change.promoted = false;
    change.on_trial = true;
    change.reason += "; on trial: the users judge it next";
    SELFFEED_RETURN_IF_ERROR(start_trial(std::move(candidate), std::move(record), options_.trial_share));
  } else if (change.promoted) {
    SELFFEED_RETURN_IF_ERROR(swap_in(std::move(candidate), std::move(record)));
  } else {
    SELFFEED_RETURN_IF_ERROR(store_.put_model(record));
    if (forgetting) {
      const std::string tainted_live = live_->version;
      SELFFEED_RETURN_IF_ERROR(
          promote_locked(against, /*force=*/false,
                         "forgetting: " + tainted_live + " learned from the examples of a deleted user, and " +
                             candidate->version + ", retrained without them, was refused")
              .status());
      change.reason += "; " + against + " goes live instead, for the live " + tainted_live +
                       " learned from the examples of a deleted user";
    }
  }
  change.live_version = live_->version;
  return change;
}

Result<ModelChange> ModelManager::promote(const std::string& version, bool force, const std::string& reason) {
  std::lock_guard lock(mutex_);
  return promote_locked(version, force, reason);
}

Result<ModelChange> ModelManager::promote_locked(const std::string& version, bool force, const std::string& reason) {
  SELFFEED_ASSIGN_OR_RETURN(ModelRecord record, store_.get_model(version));
  if (record.status == ModelStatus::kLive && version == live_->version) {
    return already_exists_error("version " + version + " is already live");
  }
  if (!force) {
    SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> versions, tainted());
    if (versions.contains(version)) return learned_from_deleted_error(version, "promoted without force");
  }
  SELFFEED_ASSIGN_OR_RETURN(auto models, load_live_models(record.path, options_.scorer));
  if (models->version != version) {
    return failed_precondition_error("the bundle at " + record.path + " is version " + models->version + ", not " + version);
  }
  SELFFEED_RETURN_IF_ERROR(swap_in(std::move(models), std::move(record)));
  log()->info("{} is live ({})", version, reason);
  return ModelChange{version, true, reason, std::nullopt, std::nullopt, version};
}

Result<ModelChange> ModelManager::rollback() {
  std::lock_guard lock(mutex_);
  SELFFEED_ASSIGN_OR_RETURN(auto records, store_.list_models());
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> versions, tainted());
  const ModelRecord* previous = nullptr;
  std::size_t skipped = 0;
  for (const ModelRecord& r : records) {
    if (r.status != ModelStatus::kRetired || r.version == live_->version) continue;
    if (versions.contains(r.version)) {
      ++skipped;
    } else if (previous == nullptr || r.updated_ms >= previous->updated_ms) {
      previous = &r;
    }
  }
  if (previous == nullptr) {
    return not_found_error(skipped == 0 ? "no retired model to roll back to"
                                        : "no retired model to roll back to that did not learn from a deleted user's "
                                          "examples (" + std::to_string(skipped) + " did)");
  }
  return promote_locked(previous->version, /*force=*/false, "rollback from " + live_->version);
}

Result<ModelChange> ModelManager::trial(const std::string& bundle_dir, double share) {
  if (!(share > 0 && share < 1)) return invalid_argument_error("the trial's share of users must be between 0 and 1");
  std::lock_guard lock(mutex_);
  const std::string path = registry_path(bundle_dir);
  SELFFEED_ASSIGN_OR_RETURN(auto candidate, load_live_models(path, options_.scorer));
  if (candidate->version == live_->version) {
    return already_exists_error("version " + candidate->version + " is already live");
  }
  SELFFEED_RETURN_IF_ERROR(refuse_if_tainted(*candidate, path, "tried on users"));
  const std::int64_t now = unix_millis();
  ModelRecord record{candidate->version, path, ModelStatus::kTrial, candidate->dialogue->info().metrics_json,
                     candidate->dialogue->info().lineage_json, now, now};
  const std::string version = candidate->version;
  SELFFEED_RETURN_IF_ERROR(start_trial(std::move(candidate), std::move(record), share));
  ModelChange change{version, false, "on trial beside " + live_->version, std::nullopt, std::nullopt, live_->version};
  change.on_trial = true;
  return change;
}

Result<std::string> ModelManager::shadow(const std::string& bundle_dir, double share) {
  if (!(share > 0 && share <= 1)) return invalid_argument_error("the shadow's share of conversations must be in (0, 1]");
  std::lock_guard lock(mutex_);
  const std::string path = registry_path(bundle_dir);
  SELFFEED_ASSIGN_OR_RETURN(auto models, load_shadow(path));
  const std::string version = models->version;
  SELFFEED_RETURN_IF_ERROR(withdraw_from(*models).status());
  SELFFEED_RETURN_IF_ERROR(store_.set_setting(kShadowSetting, json({{"bundle", path}, {"share", share}}).dump()));
  engine_.start_shadow(std::move(models), share);
  return version;
}

Result<std::shared_ptr<LiveModels>> ModelManager::load_shadow(const std::string& path) {
  // Only its ranker runs (the live model's estimator judges the replies), so its own
  // estimator is not loaded: the regexes stand in, for nothing.
  SELFFEED_ASSIGN_OR_RETURN(auto models, load_live_models(path, ScorerKind::kRegex));
  if (models->version == live_->version) {
    return already_exists_error("version " + models->version + " is live: a shadow beside itself compares nothing");
  }
  // Its replies are kept in the transcripts: a deleted user's words would come back.
  SELFFEED_RETURN_IF_ERROR(refuse_if_tainted(*models, path, "run in shadow"));
  return models;
}

Result<std::string> ModelManager::end_shadow() {
  std::lock_guard lock(mutex_);
  const std::string version = engine_.shadow().version;
  if (version.empty()) return not_found_error("no model is in shadow");
  SELFFEED_RETURN_IF_ERROR(store_.set_setting(kShadowSetting, ""));
  engine_.end_shadow();
  return version;
}

Status ModelManager::resume_shadow() {
  SELFFEED_ASSIGN_OR_RETURN(const std::string setting, store_.get_setting(kShadowSetting));
  if (setting.empty()) return ok_status();
  const json saved = json::parse(setting, nullptr, false);
  if (!saved.is_object() || !saved.contains("bundle") || !saved["bundle"].is_string() || !saved.contains("share") ||
      !saved["share"].is_number() || !(saved["share"].get<double>() > 0 && saved["share"].get<double>() <= 1)) {
    log()->warn("the saved shadow is not resumed: unreadable setting '{}'", setting);
    return store_.set_setting(kShadowSetting, "");
  }
  const std::string path = saved["bundle"].get<std::string>();
  auto models = load_shadow(path);
  if (!models.ok()) {
    log()->warn("the shadow of {} is not resumed: {}", path, models.status().to_string());
    return store_.set_setting(kShadowSetting, "");
  }
  SELFFEED_RETURN_IF_ERROR(withdraw_from(**models).status());
  engine_.start_shadow(std::move(*models), saved["share"].get<double>());
  return ok_status();
}

Status ModelManager::start_trial(std::shared_ptr<LiveModels> models, ModelRecord record, double share) {
  json metrics = json::parse(record.metrics_json, nullptr, false);
  if (!metrics.is_object()) metrics = json::object();
  record.updated_ms = unix_millis();
  metrics["trial"] = {{"share", share}, {"against", live_->version}, {"started_ms", record.updated_ms}};
  record.status = ModelStatus::kTrial;
  record.metrics_json = metrics.dump();
  SELFFEED_RETURN_IF_ERROR(store_.put_model(record));
  SELFFEED_RETURN_IF_ERROR(retire_trials(record.version));
  SELFFEED_RETURN_IF_ERROR(withdraw_from(*models).status());
  engine_.start_trial(std::move(models), share);
  return ok_status();
}

Result<std::optional<ModelChange>> ModelManager::judge_trial(std::uint64_t min_conversations) {
  std::lock_guard lock(mutex_);
  const std::string version = engine_.trial().version;
  if (version.empty()) return std::optional<ModelChange>();
  SELFFEED_ASSIGN_OR_RETURN(ModelRecord record, store_.get_model(version));
  json metrics = json::parse(record.metrics_json, nullptr, false);
  if (!metrics.is_object() || !metrics.contains("trial") || !metrics["trial"].is_object()) {
    return internal_error("the registry has no trial record for " + version);
  }
  json& trial = metrics["trial"];
  SELFFEED_ASSIGN_OR_RETURN(ModelReport report,
                            report_models(store_, {.since_ms = trial.value("started_ms", std::int64_t{0}),
                                                   .shadows = false}));
  const auto& comparison = report.comparison;
  if (!comparison || comparison->version != version || comparison->against != live_->version) {
    return std::optional<ModelChange>();  // one side has no turns yet
  }
  for (const VersionReport& v : report.versions) {
    if ((v.version == version || v.version == live_->version) && v.conversations < min_conversations) {
      return std::optional<ModelChange>();
    }
  }
  const std::string worse = worse_with_users(*comparison);
  const std::string verdict = worse.empty() ? "not worse with users than " + live_->version
                                            : "worse with users than " + live_->version + ": " + worse;
  trial["decided_ms"] = unix_millis();
  trial["verdict"] = verdict;
  trial["report"] = to_json(report);
  record.metrics_json = metrics.dump();
  log()->info("trial of {}: {}", version, verdict);
  if (!worse.empty()) {
    record.status = ModelStatus::kRejected;
    record.updated_ms = unix_millis();
    SELFFEED_RETURN_IF_ERROR(store_.put_model(record));
    engine_.end_trial();
    return std::optional<ModelChange>(
        ModelChange{version, false, verdict, std::nullopt, std::nullopt, live_->version});
  }
  SELFFEED_RETURN_IF_ERROR(store_.put_model(record));
  SELFFEED_ASSIGN_OR_RETURN(ModelChange change, promote_locked(version, /*force=*/false, verdict));
  return std::optional<ModelChange>(std::move(change));
}

Result<ModelChange> ModelManager::end_trial() {
  std::lock_guard lock(mutex_);
  const std::string version = engine_.trial().version;
  if (version.empty()) return not_found_error("no model is on trial");
  SELFFEED_RETURN_IF_ERROR(retire_trials(""));
  engine_.end_trial();
  log()->info("the trial of {} ended by an operator", version);
  return ModelChange{version, false, "trial ended", std::nullopt, std::nullopt, live_->version};
}

}  // namespace selffeed::app
