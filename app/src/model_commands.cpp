#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "model_report.h"
#include "snapshots.h"
#include "selffeed/common/log.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/store/store.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

// `eval` looks for repeated replies in this many contexts (each is ranked against the whole
// candidate pool, twice).
constexpr std::size_t kRepeatExamples = 2000;

// The default bound of a bundle's candidate pool. Every turn scores every candidate, so
// reply latency grows with the pool, and each retraining adds the harvested replies.
constexpr std::size_t kMaxCandidates = 200000;

// The commit this binary was built from, for bundle lineage ("unknown" outside a checkout).
std::string git_commit() {
  std::string cmd = "git -C '" SELFFEED_SOURCE_DIR "' rev-parse HEAD 2>/dev/null";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return "unknown";
  char buf[64] = {0};
  std::string out = std::fgets(buf, sizeof buf, pipe) != nullptr ? std::string(buf) : "";
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

// Validation: the last `share` of a PersonaChat file (whole dialogues, apart from the
// boundary), never the evaluation file; `examples` keeps the rest.
std::vector<trainer::RankingExample> split_off_held_out(std::vector<trainer::RankingExample>& examples, double share) {
  const std::size_t keep = examples.size() - static_cast<std::size_t>(static_cast<double>(examples.size()) * share);
  std::vector<trainer::RankingExample> held_out(examples.begin() + static_cast<std::ptrdiff_t>(keep), examples.end());
  examples.resize(keep);
  return held_out;
}

struct TrainFlags {
  std::string out;
  std::string personachat;
  double personachat_weight = 1.0;
  std::string self_dialogue;
  double self_dialogue_weight = 1.0;
  std::vector<std::string> jsonl;
  std::vector<std::string> human_replies;
  double human_replies_weight = 1.0;
  std::string synthetic_persona_chat;
  double synthetic_persona_chat_weight = 1.0;
  double holdout = 0.05;
  int threads = 1;
  // Harvested examples: HB and FB read from a store (read-only, beside a running server).
  std::string store;
  double hb_weight = 1.0;
  double fb_weight = 1.0;
  std::string blocklist;  // blocked words for trainer::HarvestGuard; empty: the built-in ones
  std::size_t max_examples_per_user = 1000;  // trainer::load_harvested's cap; 0: none
  trainer::TrustRule trust;                   // who is not learned from at all
  // Judge the harvested HB examples again with the estimator of the bundle trained from
  // (else the live one), leaving out those it calls unsatisfied (HarvestOptions::rejudge).
  bool rejudge_harvest = false;
  double rejudge_threshold = -1;  // below it an HB is left out; < 0: the estimator's own
  // retrain: each task's share of batches is its size times its weight, and the model is
  // fine-tuned from the live bundle of the store's registry unless told otherwise.
  bool retrain = false;
  bool from_scratch = false;
  // SATISFACTION: rated ConvAI2 files (train split to fit, valid to pick) plus the store's
  // thumbs. Empty: the estimator is carried over unchanged.
  std::vector<std::string> satisfaction_labelled;
  // Unrated ConvAI2 files: the label model's soft labels (trainer::weak_labels) for a
  // sample of their replies join the SATISFACTION task (weak supervision). Empty: none.
  std::vector<std::string> satisfaction_pool;
  std::size_t satisfaction_weak_sample = 6000;
  std::string labeling_functions;  // a file of pattern functions beside the built-ins (weak labels)
  int satisfaction_epochs = 4;
  double satisfaction_lr = 5e-4;
  double satisfaction_max_ask_rate = 1.0;  // the threshold's budget on valid (1: F1 alone)
  trainer::DialogueTrainOptions train;
};

// The users' thumbs read from the store, for the SATISFACTION task.
using Thumbs = trainer::SatisfactionPairs;

// The bundle the registry says is live.
Result<std::string> live_bundle_path(const store::Store& store) {
  SELFFEED_ASSIGN_OR_RETURN(auto models, store.list_models());
  for (auto it = models.rbegin(); it != models.rend(); ++it) {
    if (it->status == ModelStatus::kLive) return it->path;
  }
  return not_found_error("the store's model registry has no live model; pass --init-bundle");
}

// Retraining must not fine-tune weights that learned from a deleted user's examples: the
// live bundle it starts from by default gives way to the newest version up its
// fine-tuning chain that did not (lineage "restarted_from"); a registered --init-bundle
// that did is refused. (An unregistered one the gate judges by its lineage.)
Status start_from_forgetting_bundle(const store::Store& store, bool chosen_by_default, std::string& init_bundle,
                                    json& lineage) {
  SELFFEED_ASSIGN_OR_RETURN(const std::vector<ModelRecord> models, store.list_models());
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> tainted, learned_from_deleted_users(store, models));
  const std::string path = registry_path(init_bundle);
  auto record = std::find_if(models.begin(), models.end(),
                             [&](const ModelRecord& m) { return registry_path(m.path) == path; });
  if (record == models.end() || !tainted.contains(record->version)) return ok_status();
  const std::string why = "version " + record->version + " (" + init_bundle +
                          ") learned from the examples of a deleted user, and its weights would pass them on";
  if (!chosen_by_default) return failed_precondition_error(why + ": start from another bundle or --from-scratch");
  auto clean = newest_clean_ancestor(models, init_bundle, tainted);
  if (!clean.ok()) {
    return failed_precondition_error("the live " + why + "; " + clean.status().message() +
                                     ": pass --from-scratch or --init-bundle");
  }
  SELFFEED_LOGGER("app")->warn("the live {}: fine-tuning {} ({}) instead", why, clean->version, clean->path);
  lineage["restarted_from"] = {{"version", clean->version},
                               {"instead_of", record->version},
                               {"why", "the live version learned from the examples of a deleted user"}};
  init_bundle = clean->path;
  return ok_status();
}

// The estimator of `bundle_dir` as HarvestOptions::rejudge: P(satisfied) in batches of 256,
// so that a store of any size is judged in bounded memory.
Result<trainer::HarvestOptions::Judge> estimator_of(const std::string& bundle_dir, double& threshold) {
  SELFFEED_ASSIGN_OR_RETURN(auto tokenizer, dialogue::DialogueModel::load_tokenizer(bundle_dir));
  SELFFEED_ASSIGN_OR_RETURN(std::shared_ptr<satisfaction::SatisfactionModel> estimator,
                            satisfaction::SatisfactionModel::load(bundle_dir, tokenizer));
  threshold = estimator->threshold();
  return trainer::HarvestOptions::Judge(
      [estimator](std::span<const std::string> contexts) -> Result<std::vector<double>> {
        constexpr std::size_t kBatch = 256;
        std::vector<double> scores;
        for (std::size_t from = 0; from < contexts.size(); from += kBatch) {
          SELFFEED_ASSIGN_OR_RETURN(std::vector<double> batch,
                                    estimator->score(contexts.subspan(from, std::min(kBatch, contexts.size() - from))));
          scores.insert(scores.end(), batch.begin(), batch.end());
        }
        return scores;
      });
}

// Who the trust rule read and what it saw of each, beside the run's checkpoints: the
// operator's view when setting its thresholds (the log names only the first distrusted).
Status write_trust_report(const std::string& run_dir, const trainer::TrustRule& rule, const std::string& judged_by,
                          const std::vector<trainer::TeacherTrust>& teachers) {
  json list = json::array();
  for (const trainer::TeacherTrust& t : teachers) {
    list.push_back({{"teacher", t.teacher},
                    {"trusted", t.trusted},
                    {"replies", t.replies},
                    {"blocked_word", t.blocked},
                    {"repeated", t.repeated},
                    {"feedback", t.feedback},
                    {"feedback_rank", t.feedback_rank ? json(*t.feedback_rank) : json(nullptr)}});
  }
  const json report = {{"rule",
                        {{"min_replies", rule.min_examples},
                         {"max_blocked_share", rule.max_blocked_share},
                         {"max_repeated_share", rule.max_repeated_share},
                         {"min_feedback", rule.min_feedback},
                         {"max_feedback_rank", rule.max_feedback_rank}}},
                       {"feedback_judged_by", judged_by.empty() ? json(nullptr) : json(judged_by)},
                       {"teachers", list}};
  std::error_code error;
  std::filesystem::create_directories(run_dir, error);
  if (error) return invalid_argument_error("cannot create '" + run_dir + "': " + error.message());
  return write_report((std::filesystem::path(run_dir) / "trust.json").string(), report.dump(1));
}

// Adds the store's harvested HB and FB examples as two tasks and keeps its thumbs for the
// SATISFACTION task; records every example used in the lineage.
Status add_harvested(TrainFlags& f, json& lineage, Thumbs& thumbs) {
  trainer::DialogueTrainOptions& o = f.train;
  SELFFEED_ASSIGN_OR_RETURN(auto store, store::Store::open({.path = f.store, .mode = store::OpenMode::kReadOnly}));
  const bool live_by_default = f.retrain && !f.from_scratch && o.init_bundle.empty();
  if (live_by_default) {
    SELFFEED_ASSIGN_OR_RETURN(o.init_bundle, live_bundle_path(*store));
  }
  if (!o.init_bundle.empty()) {
    SELFFEED_RETURN_IF_ERROR(start_from_forgetting_bundle(*store, live_by_default, o.init_bundle, lineage));
  }
  trainer::HarvestGuard guard;
  if (!f.blocklist.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(guard, trainer::HarvestGuard::from_file(f.blocklist));
  }
  trainer::HarvestOptions options{.max_per_user = f.max_examples_per_user, .trust = f.trust};
  std::string judge;  // the bundle whose estimator judged the harvest again
  if (f.rejudge_harvest) {
    if (o.init_bundle.empty()) {
      SELFFEED_ASSIGN_OR_RETURN(judge, live_bundle_path(*store));
    } else {
      judge = o.init_bundle;
    }
    auto estimator = estimator_of(judge, options.rejudge_threshold);
    if (!estimator.ok()) return estimator.status().with_context("--rejudge-harvest judges with that bundle's estimator");
    options.rejudge = std::move(*estimator);
    if (f.rejudge_threshold >= 0) options.rejudge_threshold = f.rejudge_threshold;
  }
  // The trust rule's relevance judge: the dialogue model trained from, else the live one;
  // none for a first model trained from scratch.
  std::string relevance_judge;
  if (f.trust.max_feedback_rank <= 1) {
    if (!o.init_bundle.empty()) {
      relevance_judge = o.init_bundle;
    } else if (auto live = live_bundle_path(*store); live.ok()) {
      relevance_judge = *live;
    }
  }
  if (!relevance_judge.empty()) {
    auto model = dialogue::DialogueModel::load(relevance_judge);
    if (!model.ok()) return model.status().with_context("judging the relevance of the harvested feedback");
    options.relevance = trainer::feedback_relevance(std::move(*model));
  }
  SELFFEED_ASSIGN_OR_RETURN(trainer::HarvestedExamples harvested, trainer::load_harvested(*store, guard, options));
  SELFFEED_RETURN_IF_ERROR(write_trust_report(f.out, f.trust, relevance_judge, harvested.teachers));
  std::vector<std::uint64_t> used;
  struct Task {
    const char* name;
    std::vector<trainer::RankingExample>* examples;
    const std::vector<std::uint64_t>* seqs;
    double weight;
  };
  for (Task task : {Task{"harvested_hb", &harvested.dialogue, &harvested.dialogue_seqs, f.hb_weight},
                    Task{"harvested_fb", &harvested.feedback, &harvested.feedback_seqs, f.fb_weight}}) {
    if (task.examples->size() < 2) continue;  // in-batch negatives need two; not used
    for (const auto& e : *task.examples) o.candidate_pool.push_back(e.target);
    for (std::uint64_t seq : *task.seqs) used.push_back(seq);
    o.sources.push_back({.name = task.name, .examples = std::move(*task.examples), .weight = task.weight});
  }
  if (!f.satisfaction_labelled.empty()) {
    for (std::uint64_t seq : harvested.satisfaction_seqs) used.push_back(seq);
    thumbs = std::move(harvested.thumbs);
  }
  std::sort(used.begin(), used.end());  // the examples come in text order
  // Pinned from the same read-only open as the examples: a user deleted meanwhile cannot
  // make the pin differ from what was trained on.
  SELFFEED_ASSIGN_OR_RETURN(const std::string snapshot,
                            snapshot_sha256(*store, std::set<std::uint64_t>(used.begin(), used.end())));
  lineage["harvested"] = {{"store", f.store},
                          {"watermark", harvested.watermark},
                          {"HB", harvested.dialogue_seqs.size()},
                          {"FB", harvested.feedback_seqs.size()},
                          {"ST", f.satisfaction_labelled.empty() ? 0 : harvested.satisfaction_seqs.size()},
                          {"ST_completed_with_the_later_reply",
                           f.satisfaction_labelled.empty() ? 0 : harvested.thumbs_completed},
                          {"ST_superseded_by_a_later_rating",
                           f.satisfaction_labelled.empty() ? 0 : harvested.thumbs_superseded},
                          {"FB_superseded_by_a_later_suggestion", harvested.suggestions_superseded},
                          {"FB_held_out_for_the_gate", harvested.feedback_holdout.size()},
                          {"HB_held_out_with_their_conversation", harvested.dialogue_held_out},
                          {"skipped_deleted_users", harvested.skipped_deleted_users},
                          {"refused_by_the_guard", harvested.refused},
                          {"over_the_user_cap", harvested.over_the_user_cap},
                          {"repeated_by_their_teacher", harvested.repeated_by_their_teacher},
                          {"untrusted_users", harvested.untrusted.size()},
                          {"examples_of_untrusted_users", harvested.examples_of_the_untrusted},
                          {"untrusted_for_irrelevant_feedback", harvested.untrusted_for_irrelevant_feedback},
                          {"feedback_judged_by", relevance_judge.empty() ? json(nullptr) : json(relevance_judge)},
                          {"HB_rejudged_unsatisfied", harvested.rejudged_unsatisfied},
                          {"rejudged_by", f.rejudge_harvest ? json(judge) : json(nullptr)},
                          {"rejudge_threshold", f.rejudge_harvest ? json(options.rejudge_threshold) : json(nullptr)},
                          {"example_seqs", used},
                          {"snapshot_sha256", snapshot}};
  std::size_t refused = 0;
  for (const auto& [why, count] : harvested.refused) refused += count;
  SELFFEED_LOGGER("app")->info(
      "harvested from {}: {} HB, {} FB, {} ST ({} completed with the reply that came after the rating, {} superseded "
      "by a later rating of the same answer; {} FB superseded by a later suggestion; up to seq {}; "
      "{} FB and {} HB of the gate's conversations held out, {} of deleted users skipped, {} refused by the guard, "
      "{} of {} untrusted users left out, {} repeated by their teacher, {} over the cap of {} per user; snapshot "
      "sha256 {})",
      f.store, harvested.dialogue_seqs.size(), harvested.feedback_seqs.size(), harvested.satisfaction_seqs.size(),
      harvested.thumbs_completed, harvested.thumbs_superseded, harvested.suggestions_superseded, harvested.watermark, harvested.feedback_holdout.size(), harvested.dialogue_held_out,
      harvested.skipped_deleted_users, refused, harvested.examples_of_the_untrusted, harvested.untrusted.size(),
      harvested.repeated_by_their_teacher, harvested.over_the_user_cap, f.max_examples_per_user, snapshot);
  if (f.rejudge_harvest) {
    SELFFEED_LOGGER("app")->info("judged again by the estimator of {} (threshold {:.3f}): {} HB left out as unsatisfied",
                                 judge, options.rejudge_threshold, harvested.rejudged_unsatisfied);
  }
  if (!harvested.untrusted.empty()) {
    constexpr std::size_t kNamed = 20;
    std::string names;
    for (std::size_t i = 0; i < harvested.untrusted.size() && i < kNamed; ++i) names += (i ? ", " : "") + harvested.untrusted[i];
    if (harvested.untrusted.size() > kNamed) names += ", ...";
    SELFFEED_LOGGER("app")->info(
        "not learned from (at least {} replies, a blocked word in {:.0f}% of them or repeats in {:.0f}%; or at least "
        "{} FB examples of mean rank {:.2f} or worse by {}: {} of them): {}",
        f.trust.min_examples, 100 * f.trust.max_blocked_share, 100 * f.trust.max_repeated_share, f.trust.min_feedback,
        f.trust.max_feedback_rank, relevance_judge.empty() ? "no model" : relevance_judge,
        harvested.untrusted_for_irrelevant_feedback, names);
  }
  return ok_status();
}

// The SATISFACTION task. The estimator shares no weights with the dialogue encoders (it
// has its own embeddings and encoder), so it trains in its own phase, on the rated train
// split, the users' thumbs and (with a pool) the label model's soft labels:
// fine-tuned from the starting bundle's estimator when that bundle has one (not with
// --from-scratch, whose new tokenizer it would not fit), else from scratch.
// The valid split picks the epoch and the threshold; the result replaces the estimator
// in the new bundle. Returns its numbers for the report.
Result<json> retrain_satisfaction(const TrainFlags& f, const std::string& bundle_dir, const Thumbs& thumbs,
                                  std::span<const satisfaction::LabelingFunction> functions) {
  SELFFEED_ASSIGN_OR_RETURN(trainer::SatisfactionData data,
                            trainer::load_satisfaction_data(f.satisfaction_labelled, f.satisfaction_pool));
  trainer::SatisfactionSplits splits = trainer::satisfaction_splits(data.labelled);
  trainer::SatisfactionPairs weak;
  if (!f.satisfaction_pool.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(satisfaction::LabelModel label_model, trainer::fit_label_model(data, functions));
    std::mt19937_64 rng(f.train.seed);
    weak = trainer::weak_labels(label_model, data.unlabelled, f.satisfaction_weak_sample, rng, functions);
  }
  SELFFEED_ASSIGN_OR_RETURN(auto tokenizer, dialogue::DialogueModel::load_tokenizer(bundle_dir));
  trainer::SatisfactionTrainOptions o{.tokenizer = std::move(tokenizer)};
  const std::string& start = f.train.init_bundle;
  if (!start.empty() && satisfaction::SatisfactionModel::present_in(start)) {
    // An estimator of an older format cannot be fine-tuned: a new one is trained instead,
    // so that retraining is also the way out of it.
    auto old = satisfaction::SatisfactionModel::load(start, o.tokenizer);
    if (old.ok()) {
      o.init_estimator_from = start;
    } else if (old.status().code() == StatusCode::kFailedPrecondition) {
      SELFFEED_LOGGER("app")->warn("training a new satisfaction estimator: {}", old.status().message());
    } else {
      return old.status();
    }
  }
  o.train_contexts = splits.train.contexts;
  o.train_targets.assign(splits.train.labels.begin(), splits.train.labels.end());
  o.train_contexts.insert(o.train_contexts.end(), thumbs.contexts.begin(), thumbs.contexts.end());
  o.train_targets.insert(o.train_targets.end(), thumbs.targets.begin(), thumbs.targets.end());
  o.train_contexts.insert(o.train_contexts.end(), weak.contexts.begin(), weak.contexts.end());
  o.train_targets.insert(o.train_targets.end(), weak.targets.begin(), weak.targets.end());
  o.valid_contexts = std::move(splits.valid.contexts);
  o.valid_labels = std::move(splits.valid.labels);
  o.max_ask_rate = f.satisfaction_max_ask_rate;
  o.epochs = f.satisfaction_epochs;
  o.learning_rate = f.satisfaction_lr;
  o.seed = f.train.seed;
  SELFFEED_ASSIGN_OR_RETURN(trainer::SatisfactionTrainReport trained, trainer::train_satisfaction(o));
  SELFFEED_ASSIGN_OR_RETURN(std::vector<double> test_scores, trained.model->score(splits.test.contexts));
  const satisfaction::BinaryMetrics test =
      satisfaction::evaluate_binary(test_scores, splits.test.labels, trained.model->threshold());
  SELFFEED_RETURN_IF_ERROR(trained.model->save(bundle_dir));
  SELFFEED_LOGGER("app")->info("satisfaction estimator: valid AUC {:.3f}, test AUC {:.3f} F1 {:.3f} (epoch {} of {})",
                               trained.valid_auc, test.auc, test.f1, trained.best_epoch, f.satisfaction_epochs);
  return json{{"fine_tuned_from", o.init_estimator_from.empty() ? json(nullptr) : json(o.init_estimator_from)},
              {"train_examples", o.train_contexts.size()},
              {"thumbs", thumbs.contexts.size()},
              {"weak_labels", weak.contexts.size()},
              {"best_epoch", trained.best_epoch},
              {"valid_auc", trained.valid_auc},
              {"test_auc", test.auc},
              {"test_f1", test.f1},
              {"threshold", trained.model->threshold()},
              {"valid_ask_rate", trained.valid_ask_rate}};
}

int run_train(TrainFlags& f) {
  dialogue::configure_threads({.intra_op = f.threads});
  SELFFEED_LOGGER("app")->info("LibTorch BLAS: {}", dialogue::loaded_blas_library());
  trainer::DialogueTrainOptions& o = f.train;
  o.run_dir = f.out;
  json lineage = {{"git_commit", git_commit()}, {"data", json::array()}};
  // Read before training, so that a broken file fails at once.
  auto functions = satisfaction::labeling_functions_with(f.labeling_functions);
  if (!functions.ok()) return fail(functions.status());
  std::vector<trainer::RankingExample> held_out;
  if (!f.personachat.empty()) {
    auto hh = trainer::load_parlai_text(f.personachat, {.both_sides = true});
    if (!hh.ok()) return fail(hh.status());
    held_out = split_off_held_out(*hh, f.holdout);
    for (const auto& e : *hh) o.candidate_pool.push_back(e.target);
    lineage["data"].push_back({{"file", f.personachat}, {"examples", hh->size()}, {"held_out", held_out.size()}});
    o.sources.push_back({.name = "personachat", .examples = std::move(hh).value(), .weight = f.personachat_weight});
  }
  if (!f.self_dialogue.empty()) {
    auto sd = trainer::load_self_dialogue_tsv(f.self_dialogue, "train");
    if (!sd.ok()) return fail(sd.status());
    lineage["data"].push_back({{"file", f.self_dialogue}, {"split", "train"}, {"examples", sd->size()}});
    o.sources.push_back({.name = "self_dialogue", .examples = std::move(sd).value(), .weight = f.self_dialogue_weight});
  }
  if (!f.human_replies.empty()) {  // one source, however many files
    trainer::DataSource humans{.name = "human_replies", .weight = f.human_replies_weight};
    for (const std::string& path : f.human_replies) {
      auto replies = path.ends_with(".json") ? trainer::load_convai2_human_replies(path)
                                             : trainer::load_human_replies_jsonl(path);
      if (!replies.ok()) return fail(replies.status());
      for (auto& e : *replies) {
        o.candidate_pool.push_back(e.target);
        humans.examples.push_back(std::move(e));
      }
      lineage["data"].push_back({{"file", path}, {"human_replies", replies->size()}});
    }
    o.sources.push_back(std::move(humans));
  }
  if (!f.synthetic_persona_chat.empty()) {
    auto spc = trainer::load_synthetic_persona_chat_csv(f.synthetic_persona_chat);
    if (!spc.ok()) return fail(spc.status());
    for (const auto& e : *spc) o.candidate_pool.push_back(e.target);
    lineage["data"].push_back({{"file", f.synthetic_persona_chat}, {"examples", spc->size()}});
    o.sources.push_back(
        {.name = "synthetic_persona_chat", .examples = std::move(spc).value(), .weight = f.synthetic_persona_chat_weight});
  }
  for (const std::string& path : f.jsonl) {
    auto extra = trainer::load_self_feeding_jsonl(path);
    if (!extra.ok()) return fail(extra.status());
    for (const auto& e : *extra) o.candidate_pool.push_back(e.target);
    lineage["data"].push_back({{"file", path}, {"examples", extra->size()}});
    o.sources.push_back({.name = path, .examples = std::move(extra).value(), .weight = 1.0});
  }
  // Before the harvest, which may take minutes to judge.
  if (held_out.empty()) return fail(invalid_argument_error("--personachat is required (its tail is the validation set)"));
  Thumbs thumbs;
  if (!f.store.empty()) {
    if (Status s = add_harvested(f, lineage, thumbs); !s.ok()) return fail(s);
  }
  if (!f.satisfaction_labelled.empty()) lineage["satisfaction_labelled"] = f.satisfaction_labelled;
  if (!f.satisfaction_pool.empty()) lineage["satisfaction_pool"] = f.satisfaction_pool;
  if (!f.labeling_functions.empty()) lineage["labeling_functions"] = f.labeling_functions;
  if (f.retrain) {
    for (auto& source : o.sources) source.weight *= static_cast<double>(source.examples.size());
  }
  trainer::add_random_candidates(held_out, 19, o.seed);
  o.valid = std::move(held_out);
  o.lineage_json = lineage.dump();
  o.on_progress = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  auto report = trainer::train_dialogue(o);
  if (!report.ok()) return fail(report.status());
  json out = {{"steps", report->steps},
              {"seconds", report->seconds},
              {"examples_per_second", report->examples_per_second},
              {"best_valid_hits@1", report->best_valid_hits_at_1},
              {"best_step", report->best_step},
              {"early_stopped", report->early_stopped},
              {"lexical_weight", report->lexical_weight},
              {"persona_weight", report->persona_weight},
              {"valid_hits@1_with_lexical", report->valid_hits_at_1_with_lexical},
              {"candidates_left_out", report->candidates_left_out},
              {"bundle", report->bundle_dir}};
  if (!f.satisfaction_labelled.empty()) {
    auto satisfaction = retrain_satisfaction(f, report->bundle_dir, thumbs, *functions);
    if (!satisfaction.ok()) return fail(satisfaction.status().with_context("SATISFACTION task"));
    out["satisfaction"] = *satisfaction;
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

struct EvalFlags {
  std::string bundle;
  std::string file;
  std::string json_out;
  int threads = 1;
};

int run_eval(const EvalFlags& f) {
  dialogue::configure_threads({.intra_op = f.threads});
  auto data = f.file.size() > 6 && f.file.ends_with(".jsonl") ? trainer::load_self_feeding_jsonl(f.file)
                                                               : trainer::load_parlai_text(f.file);
  if (!data.ok()) return fail(data.status());
  auto model = dialogue::DialogueModel::load(f.bundle);
  if (!model.ok()) return fail(model.status());
  auto neural = trainer::evaluate_ranking(**model, *data);
  if (!neural.ok()) return fail(neural.status());
  // What the lexical terms add: the model without the persona term, and its encoders alone.
  const double lexical_weight = model->get()->config().lexical_weight;
  const double persona_weight = model->get()->config().persona_weight;
  const bool personas = std::any_of(data->begin(), data->end(), [](const auto& e) { return !e.persona.empty(); });
  auto evaluate_with = [&](double lexical, double persona) -> Result<trainer::RankingMetrics> {
    SELFFEED_RETURN_IF_ERROR(model->get()->set_lexical_weight(lexical));
    SELFFEED_RETURN_IF_ERROR(model->get()->set_persona_weight(persona));
    return trainer::evaluate_ranking(**model, *data);
  };
  std::optional<trainer::RankingMetrics> without_persona, dense;
  if (persona_weight > 0 && personas) {
    auto m = evaluate_with(lexical_weight, 0);
    if (!m.ok()) return fail(m.status());
    without_persona = *m;
  }
  if (lexical_weight > 0 || (persona_weight > 0 && personas)) {
    auto m = evaluate_with(0, 0);
    if (!m.ok()) return fail(m.status());
    dense = *m;
  }
  if (Status s = model->get()->set_lexical_weight(lexical_weight); !s.ok()) return fail(s);
  if (Status s = model->get()->set_persona_weight(persona_weight); !s.ok()) return fail(s);
  auto tfidf = trainer::evaluate_tfidf(*data);
  if (!tfidf.ok()) return fail(tfidf.status());
  std::optional<trainer::RepeatRates> repeats;
  if (model->get()->candidate_pool_size() > 0) {
    auto rates = trainer::evaluate_repeats(**model, *data, kRepeatExamples);
    if (!rates.ok()) return fail(rates.status());
    repeats = *rates;
  }
  const bool synthetic = f.file.find("synthcands") != std::string::npos;
  std::printf("file: %s (%zu examples, %zu candidates each)\n", f.file.c_str(), neural->examples, neural->candidates);
  if (synthetic) {
    std::printf("note: these candidates are NOT the official PersonaChat ones: 19 distractors drawn from other\n"
                "      episodes' gold replies (see shared/data/README.md). Numbers are not comparable to the paper's.\n");
  }
  std::printf("\n| model | hits@1/%zu | hits@5/%zu | MRR |\n|---|---:|---:|---:|\n", neural->candidates, neural->candidates);
  std::printf("| %s (%s), lexical weight %g, persona weight %g%s | %.4f | %.4f | %.4f |\n",
              model->get()->info().version.c_str(), f.bundle.c_str(), lexical_weight, persona_weight,
              personas ? "" : " (the file has no personas)", neural->hits_at_1, neural->hits_at_5, neural->mrr);
  if (without_persona) {
    std::printf("| the same model without the persona term | %.4f | %.4f | %.4f |\n", without_persona->hits_at_1,
                without_persona->hits_at_5, without_persona->mrr);
  }
  if (dense) {
    std::printf("| the same encoders without the lexical terms | %.4f | %.4f | %.4f |\n", dense->hits_at_1,
                dense->hits_at_5, dense->mrr);
  }
  std::printf("| TF-IDF baseline | %.4f | %.4f | %.4f |\n", tfidf->hits_at_1, tfidf->hits_at_5, tfidf->mrr);
  if (repeats) {
    auto print = [](const trainer::ReplyRates& r) {
      std::printf("  top reply: %.4f as ranked, %.4f as served; the file's own replies: %.4f\n", r.ranked, r.served,
                  r.people);
    };
    std::printf("\nrepeats (the first %zu contexts; a reply whose TF-IDF cosine to an utterance of its context, or "
                "of one of its statements of %zu words or more to such a statement, is at least %.1f; the top reply "
                "from the bundle's %zu candidates, served with repeats held back):\n",
                repeats->repeats.examples, dialogue::DialogueModel::kRepeatedStatementWords,
                dialogue::DialogueModel::kRepeatCosine, model->get()->candidate_pool_size());
    print(repeats->repeats);
    std::printf("asking back (the %zu of them whose last utterance asks a question; a reply that is only questions, "
                "one with a TF-IDF cosine of at least %.1f to one of those):\n",
                repeats->asking_back.examples, dialogue::DialogueModel::kAskedBackCosine);
    print(repeats->asking_back);
    std::printf("telling how it is unasked (the %zu of them whose last utterance neither asks how the responder is "
                "nor tells how the partner is; \"i'm great ! how are you ?\"):\n",
                repeats->unasked_how_it_is.examples);
    print(repeats->unasked_how_it_is);
    if (repeats->drawing_on_persona.examples > 0) {
      std::printf("drawing on the persona (the %zu of them with one; a reply whose TF-IDF cosine to a persona sentence "
                  "is at least %.1f):\n",
                  repeats->drawing_on_persona.examples, trainer::kDrawsOnPersonaCosine);
      print(repeats->drawing_on_persona);
      std::printf("  where the file's reply draws on a fact of the persona (%zu), the top reply as served draws on "
                  "the same fact: %.4f\n",
                  repeats->fact_examples, repeats->same_fact_served);
      std::printf("contradicting the persona: another name or occupation, its pets, family or favorites (\"i have "
                  "3 dogs\" for \"i have two dogs .\"):\n");
      print(repeats->contradicting_persona);
      std::printf("asked its name, occupation, pets or family, and the persona has the answer (%zu), a reply that "
                  "gives it:\n",
                  repeats->answering_about_itself.examples);
      print(repeats->answering_about_itself);
    }
  }
  auto row = [](const trainer::RankingMetrics& m) {
    return json{{"hits@1", m.hits_at_1}, {"hits@5", m.hits_at_5}, {"mrr", m.mrr}};
  };
  json report = {{"file", f.file}, {"examples", neural->examples}, {"candidates", neural->candidates},
                 {"official_candidates", !synthetic}, {"bundle", f.bundle},
                 {"model_version", model->get()->info().version}, {"lexical_weight", lexical_weight},
                 {"persona_weight", persona_weight}, {"file_has_personas", personas},
                 {"model", row(*neural)}, {"tfidf", row(*tfidf)}};
  if (without_persona) report["model_without_persona"] = row(*without_persona);
  if (dense) report["model_without_lexical"] = row(*dense);
  if (repeats) {
    auto rates = [](const trainer::ReplyRates& r) {
      return json{{"examples", r.examples}, {"top_as_ranked", r.ranked}, {"top_as_served", r.served},
                  {"file_replies", r.people}};
    };
    report["repeats"] = rates(repeats->repeats);
    report["asking_back"] = rates(repeats->asking_back);
    report["unasked_how_it_is"] = rates(repeats->unasked_how_it_is);
    report["drawing_on_persona"] = rates(repeats->drawing_on_persona);
    report["drawing_on_persona"]["same_fact_examples"] = repeats->fact_examples;
    report["drawing_on_persona"]["same_fact_as_served"] = repeats->same_fact_served;
    report["contradicting_the_persona"] = rates(repeats->contradicting_persona);
    report["answering_about_itself"] = rates(repeats->answering_about_itself);
  }
  if (Status s = write_report(f.json_out, report.dump(2)); !s.ok()) return fail(s);
  return 0;
}

struct FitLexicalFlags {
  std::string bundle;
  std::string personachat;
  std::string out;
  double holdout = 0.05;
  std::optional<std::uint64_t> seed;  // default: the bundle's training seed (lineage), else 1
  int threads = 1;
  std::optional<double> persona_weight;  // instead of the fitted one
};

// A copy of a bundle with its lexical and persona weights fitted on the held-out tail that
// `train` validates on (bundles are immutable, so this writes a new one).
int run_fit_lexical(const FitLexicalFlags& f) {
  dialogue::configure_threads({.intra_op = f.threads});
  auto model = dialogue::DialogueModel::load(f.bundle);
  if (!model.ok()) return fail(model.status());
  auto hh = trainer::load_parlai_text(f.personachat, {.both_sides = true});
  if (!hh.ok()) return fail(hh.status());
  dialogue::BundleInfo info = model->get()->info();
  json metrics = json::parse(info.metrics_json, nullptr, /*allow_exceptions=*/false);
  json lineage = json::parse(info.lineage_json, nullptr, /*allow_exceptions=*/false);
  if (!metrics.is_object()) metrics = json::object();
  if (!lineage.is_object()) lineage = json::object();
  // The same distractors as training's validation had: they are drawn with its seed.
  const std::uint64_t seed = f.seed.value_or(lineage.value("seed", std::uint64_t{1}));
  std::vector<trainer::RankingExample> held_out = split_off_held_out(*hh, f.holdout);
  trainer::add_random_candidates(held_out, 19, seed);
  auto fit = trainer::fit_lexical_weight(**model, held_out);
  if (!fit.ok()) return fail(fit.status());
  auto persona = trainer::fit_persona_weight(**model, held_out);
  if (!persona.ok()) return fail(persona.status());
  if (f.persona_weight) {
    if (Status s = model->get()->set_persona_weight(*f.persona_weight); !s.ok()) return fail(s);
  }
  auto with_persona = trainer::evaluate_ranking(**model, held_out);
  if (!with_persona.ok()) return fail(with_persona.status());
  metrics["lexical_weight"] = fit->weight;
  metrics["persona_weight"] = model->get()->config().persona_weight;
  metrics["valid_hits@1_with_lexical"] = with_persona->hits_at_1;
  lineage["lexical_weight_fitted"] = {{"from_bundle", f.bundle}, {"file", f.personachat},
                                      {"held_out", held_out.size()}, {"seed", seed}};
  info.metrics_json = metrics.dump();
  info.lineage_json = lineage.dump();
  if (Status s = model->get()->save(f.out, info, {}); !s.ok()) return fail(s);
  if (Status s = satisfaction::SatisfactionModel::copy_files(f.bundle, f.out); !s.ok()) return fail(s);
  auto row = [](const trainer::RankingMetrics& m) {
    return json{{"hits@1", m.hits_at_1}, {"hits@5", m.hits_at_5}, {"mrr", m.mrr}};
  };
  json out = {{"bundle", f.out},
              {"lexical_weight", fit->weight},
              {"persona_weight", model->get()->config().persona_weight},
              {"fitted_persona_weight", persona->weight},
              {"held_out", held_out.size()},
              {"held_out_without_lexical", row(fit->dense)},
              {"held_out_with_lexical", row(fit->fitted)},
              {"held_out_with_persona", row(*with_persona)},
              {"persona_fit", {{"examples", persona->examples},
                               {"people_draw_on_persona", persona->people_rate},
                               {"top_replies_draw_on_persona_without", persona->rate_without},
                               {"top_replies_draw_on_persona", persona->rate_fitted}}}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

// The flags `train` and `retrain` share.
void add_train_flags(CLI::App* train, TrainFlags* tf) {
  train->add_option("--out", tf->out, "run directory (checkpoints, best/, bundle/)")->required();
  train->add_option("--personachat", tf->personachat, "PersonaChat/ConvAI2 ParlAI text file (both sides are used)");
  train->add_option("--personachat-weight", tf->personachat_weight, "share of batches drawn from it")->capture_default_str();
  train->add_option("--self-dialogue", tf->self_dialogue, "Self-dialogue dialogues.tsv (split 'train')");
  train->add_option("--self-dialogue-weight", tf->self_dialogue_weight, "share of batches drawn from it")->capture_default_str();
  train->add_option("--jsonl", tf->jsonl, "extra self-feeding JSONL training files");
  train->add_option("--human-replies", tf->human_replies,
                    "human-bot conversations whose human turns are targets: JSON Lines logs with 'dialog' "
                    "(controllable dialogue), or ConvAI2 wild-evaluation .json (train-split dialogues only)");
  train->add_option("--human-replies-weight", tf->human_replies_weight, "share of batches drawn from them (all files together)")
      ->capture_default_str();
  train->add_option("--synthetic-persona-chat", tf->synthetic_persona_chat,
                    "Synthetic-Persona-Chat CSV (LLM-generated persona conversations; every turn a target)");
  train->add_option("--synthetic-persona-chat-weight", tf->synthetic_persona_chat_weight, "share of batches drawn from it")
      ->capture_default_str();
  train->add_option("--holdout", tf->holdout, "tail share of --personachat kept for validation")->capture_default_str();
  train->add_option("--steps", tf->train.max_steps, "maximum optimizer steps")->capture_default_str();
  train->add_option("--minutes", tf->train.max_minutes, "stop after this many minutes (0 = no limit)")->capture_default_str();
  train->add_option("--batch", tf->train.batch_size, "batch size (in-batch negatives)")->capture_default_str();
  train->add_option("--validate-every", tf->train.validate_every, "steps between validations")->capture_default_str();
  train->add_option("--patience", tf->train.patience, "validations without improvement before stopping")->capture_default_str();
  train->add_option("--seed", tf->train.seed, "random seed")->capture_default_str();
  train->add_option("--version", tf->train.bundle_version, "version name of the bundle")->capture_default_str();
  train->add_option("--d-model", tf->train.model.d_model)->capture_default_str();
  train->add_option("--heads", tf->train.model.n_heads)->capture_default_str();
  train->add_option("--layers", tf->train.model.n_layers)->capture_default_str();
  train->add_option("--ffn", tf->train.model.ffn_size)->capture_default_str();
  train->add_option("--context-tokens", tf->train.model.context_tokens)->capture_default_str();
  train->add_option("--candidate-tokens", tf->train.model.candidate_tokens)->capture_default_str();
  train->add_option("--scaled-scores", tf->train.model.scaled_scores, "divide scores by sqrt(d_model) (true/false)")
      ->capture_default_str();
  train->add_option("--scale-embeddings", tf->train.model.scale_embeddings,
                    "multiply token embeddings by sqrt(d_model) (true/false)")->capture_default_str();
  train->add_option("--vocab", tf->train.tokenizer.vocab_size, "SentencePiece vocabulary size")->capture_default_str();
  train->add_option("--lr", tf->train.optimizer.learning_rate)->capture_default_str();
  train->add_option("--warmup", tf->train.optimizer.warmup_steps)->capture_default_str();
  train->add_option("--threads", tf->threads, "LibTorch intra-op threads")->capture_default_str();
  train->add_option("--store", tf->store, "also train on the HB and FB examples harvested in this store (read-only)");
  train->add_option("--hb-weight", tf->hb_weight, "weight of the harvested HB task")->capture_default_str();
  train->add_option("--fb-weight", tf->fb_weight, "weight of the harvested FB (FEEDBACK) task")->capture_default_str();
  train->add_option("--trust-min-replies", tf->trust.min_examples,
                    "judge a user's trust only from this many harvested HB and FB replies on")
      ->capture_default_str();
  train->add_option("--untrusted-blocked-share", tf->trust.max_blocked_share,
                    "learn nothing of a user whose replies carry a blocked word this often (above 1: never)")
      ->capture_default_str();
  train->add_option("--untrusted-repeated-share", tf->trust.max_repeated_share,
                    "learn nothing of a user whose replies repeat an earlier reply of theirs this often (above 1: never)")
      ->capture_default_str();
  train->add_option("--trust-min-feedback", tf->trust.min_feedback,
                    "judge the relevance of a user's feedback only from this many harvested FB examples on")
      ->capture_default_str();
  train->add_option("--untrusted-feedback-rank", tf->trust.max_feedback_rank,
                    "learn nothing of a user whose FB examples the model trained from ranks this low on average in its "
                    "pool (the share ranked above; 0: first, 0.5: chance, as lines from elsewhere; above 1: never)")
      ->capture_default_str();
  train->add_option("--max-examples-per-user", tf->max_examples_per_user,
                    "learn at most this many harvested HB and FB examples of one user (drawn by their text, the same "
                    "ones whatever order they came in), so that no one user outweighs the others; 0: no cap")
      ->capture_default_str();
  train->add_flag("--rejudge-harvest", tf->rejudge_harvest,
                  "judge the harvested HB examples again with the satisfaction estimator of the bundle trained from "
                  "(retrain: the live one), and leave out those it now calls unsatisfied");
  train->add_option("--rejudge-threshold", tf->rejudge_threshold,
                    "with --rejudge-harvest, leave out the HB examples whose P(satisfied) is below this (default: "
                    "the estimator's own threshold, the one the server asks for feedback below)")
      ->check(CLI::Range(0.0, 1.0));
  train->add_option("--blocklist", tf->blocklist,
                    "harvested replies with one of these words (one per line) are not learned, nor those with an "
                    "email address, web address or phone number (default: a short built-in list of profanity)")
      ->check(CLI::ExistingFile);
  train->add_option("--max-candidates", tf->train.max_candidates,
                    "at most this many replies in the bundle's candidate pool: the training files' first, then the "
                    "harvested ones (HB, then FB, each drawn by their text); every turn scores them all; 0: no limit")
      ->capture_default_str();
  train->add_option("--init-bundle", tf->train.init_bundle, "fine-tune from this bundle (retrain: the live model)");
  train->add_option("--lexical-weight", tf->train.lexical_weight,
                    "weight of the TF-IDF term in the bundle's score (default: fitted on the held-out tail)");
  train->add_option("--persona-weight", tf->train.persona_weight,
                    "weight of the persona term in the bundle's score (default: fitted on the held-out tail)");
  train->add_option("--satisfaction-labelled", tf->satisfaction_labelled,
                    "SATISFACTION task: rated ConvAI2 files (train split + the store's thumbs) for the estimator")
      ->check(CLI::ExistingFile);
  train->add_option("--satisfaction-pool", tf->satisfaction_pool,
                    "SATISFACTION task: unrated ConvAI2 files (export_*.json); the label model's probabilistic "
                    "labels for a sample of their replies are trained on too")
      ->check(CLI::ExistingFile);
  train->add_option("--satisfaction-weak-sample", tf->satisfaction_weak_sample, "replies given weak labels")
      ->capture_default_str();
  train->add_option("--labeling-functions", tf->labeling_functions,
                    "SATISFACTION task: pattern labeling functions beside the built-ins for the weak labels, one a "
                    "line: NAME satisfied|unsatisfied reply|answer RE2-PATTERN")
      ->check(CLI::ExistingFile);
  train->add_option("--satisfaction-epochs", tf->satisfaction_epochs)->capture_default_str();
  train->add_option("--satisfaction-lr", tf->satisfaction_lr)->capture_default_str();
  train->add_option("--satisfaction-max-ask-rate", tf->satisfaction_max_ask_rate,
                    "the estimator's threshold flags at most this share of the rated valid replies (the server asks "
                    "for feedback on each); 1: the threshold of best F1")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
}

void add_model_commands(CLI::App& app, Action& action) {
  auto tf = std::make_shared<TrainFlags>();
  tf->train.max_candidates = kMaxCandidates;
  CLI::App* train = app.add_subcommand("train", "train the dialogue model (resumes an existing run directory)");
  add_train_flags(train, tf.get());
  train->callback([&action, tf] { action = [tf] { return run_train(*tf); }; });

  auto rf = std::make_shared<TrainFlags>();
  rf->retrain = true;
  rf->train.max_candidates = kMaxCandidates;
  rf->train.max_steps = 500;
  rf->train.validate_every = 100;
  CLI::App* retrain = app.add_subcommand(
      "retrain", "fine-tune the live model on the original data plus what the server harvested (DIALOGUE: HH + HB, "
                 "FEEDBACK: FB, one task per batch in proportion to size x weight); safe while the server runs");
  add_train_flags(retrain, rf.get());
  retrain->get_option("--store")->required();
  retrain->add_flag("--from-scratch", rf->from_scratch, "train a fresh model instead of fine-tuning the live one");
  retrain->callback([&action, rf] { action = [rf] { return run_train(*rf); }; });

  auto ef = std::make_shared<EvalFlags>();
  CLI::App* eval = app.add_subcommand("eval", "hits@1/N, hits@5/N and MRR of a bundle, beside a TF-IDF baseline");
  eval->add_option("--bundle", ef->bundle, "model bundle directory")->required();
  eval->add_option("--file", ef->file, "ParlAI text file with candidates, or self-feeding JSONL with \"candidates\"")
      ->required();
  eval->add_option("--json", ef->json_out, "also write the report as JSON here");
  eval->add_option("--threads", ef->threads, "LibTorch intra-op threads")->capture_default_str();
  eval->callback([&action, ef] { action = [ef] { return run_eval(*ef); }; });

  auto ff = std::make_shared<FitLexicalFlags>();
  CLI::App* fit = app.add_subcommand(
      "fit-lexical",
      "copy a bundle with its lexical and persona weights fitted on the held-out tail of a PersonaChat file (lexical: best "
      "MRR; persona: the bot draws on it as often as people do)");
  fit->add_option("--bundle", ff->bundle, "model bundle directory")->required();
  fit->add_option("--personachat", ff->personachat, "the PersonaChat file it was trained on (its tail is held out)")
      ->required();
  fit->add_option("--out", ff->out, "the new bundle directory")->required();
  fit->add_option("--holdout", ff->holdout, "tail share held out (as in train)")->capture_default_str();
  fit->add_option("--seed", ff->seed,
                  "seed of the held-out examples' 19 random candidates (default: the bundle's training seed, as train drew them)");
  fit->add_option("--threads", ff->threads, "LibTorch intra-op threads")->capture_default_str();
  fit->add_option("--persona-weight", ff->persona_weight,
                  "the persona weight to write instead of the fitted one (a persona the training data never "
                  "saw is drawn on less often at the fitted weight: EVALUATION.md)");
  fit->callback([&action, ff] { action = [ff] { return run_fit_lexical(*ff); }; });
}

}  // namespace selffeed::app
